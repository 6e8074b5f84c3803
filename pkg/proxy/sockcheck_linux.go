package proxy

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// quiet reports whether nothing is waiting to be read on an idle upstream
// connection and the upstream has not closed it: one non-blocking
// recv(MSG_PEEK), which leaves any bytes where they are. EAGAIN is the
// only quiet answer; data, end of stream, an error or a connection that
// cannot be inspected all mean the connection must not be reused. The
// peeker is built once when the connection is dialled: a check on every
// reuse then allocates nothing (no raw-conn wrapper, no closure, no
// address from recvfrom).
type peeker struct {
	rc    syscall.RawConn
	fn    func(fd uintptr)
	errno syscall.Errno
	buf   [1]byte
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{rc: rawConn(c)}
	p.fn = func(fd uintptr) {
		_, _, p.errno = syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p.buf[0])), 1,
			uintptr(unix.MSG_PEEK|unix.MSG_DONTWAIT), 0, 0)
	}
	return p
}

func (p *peeker) quiet() bool {
	if p.rc == nil {
		return false
	}
	p.errno = 0
	if err := p.rc.Control(p.fn); err != nil {
		return false
	}
	return p.errno == unix.EAGAIN
}

// peerClosed reports whether the peer of a client connection has closed
// or reset it, even with unread bytes (a request body) still queued ahead
// of its FIN, which a peek cannot see past: one poll(POLLRDHUP) with no
// timeout. A half-close counts as gone, as net/http's own background read
// treats it. Errors say nothing: the next check asks again.
func peerClosed(c net.Conn) bool {
	rc := rawConn(c)
	if rc == nil {
		return false
	}
	var revents int16
	var pollErr error
	if err := rc.Control(func(fd uintptr) {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		_, pollErr = unix.Poll(fds[:], 0)
		revents = fds[0].Revents
	}); err != nil {
		return false
	}
	return pollErr == nil && revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}

func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
