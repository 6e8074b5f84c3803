package proxy

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quiet reports whether nothing is waiting to be read on an idle upstream
// connection and the upstream has not closed it: one non-blocking
// recv(MSG_PEEK), which leaves any bytes where they are. EAGAIN is the
// only quiet answer; data, end of stream, an error or a connection that
// cannot be inspected all mean the connection must not be reused.
func quiet(c net.Conn) bool {
	rc := rawConn(c)
	if rc == nil {
		return false
	}
	var peekErr error
	var buf [1]byte
	if err := rc.Control(func(fd uintptr) {
		_, _, peekErr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}); err != nil {
		return false
	}
	return errors.Is(peekErr, unix.EAGAIN)
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
