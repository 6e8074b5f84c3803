//go:build unix

package stream

import (
	"errors"
	"net"
	"syscall"
)

// readDatagram waits for a datagram on up and reads it into a buffer from
// the pool, which the caller returns. The buffer is taken only once the
// socket is readable: thousands of parked flows hold none.
func (s *Server) readDatagram(up *net.UDPConn) (*[]byte, int, error) {
	rc, err := up.SyscallConn()
	if err != nil {
		return nil, 0, err
	}
	var bp *[]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		bp = s.datagramBufs.Get().(*[]byte)
		n, rerr = syscall.Read(int(fd), *bp)
		if errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EINTR) {
			s.datagramBufs.Put(bp)
			bp = nil
			return false // park until readable
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		if bp != nil {
			s.datagramBufs.Put(bp)
		}
		return nil, 0, err
	}
	return bp, n, nil
}

// awaitData parks until conn has a byte to read or its client closed,
// without reading anything or holding a buffer. It reports whether a byte
// is waiting; a read deadline ends the wait with os.ErrDeadlineExceeded.
func awaitData(conn *net.TCPConn) (bool, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false, err
	}
	var b [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(rerr, syscall.EAGAIN) && !errors.Is(rerr, syscall.EINTR)
	})
	if err == nil {
		err = rerr
	}
	return err == nil && n > 0, err
}
