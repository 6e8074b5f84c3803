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
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
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
