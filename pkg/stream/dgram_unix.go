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
