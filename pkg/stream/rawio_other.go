//go:build !unix

package stream

import "net"

// readDatagram reads a datagram from up into a pooled buffer. Without raw
// reads the buffer is held while the read blocks.
func (s *Server) readDatagram(up *net.UDPConn) (*[]byte, int, error) {
	bp := s.datagramBufs.Get().(*[]byte)
	n, err := up.Read(*bp)
	if err != nil {
		s.datagramBufs.Put(bp)
		return nil, 0, err
	}
	return bp, n, nil
}

// awaitData cannot peek without raw sockets: it reports data at once, so
// that stream_wake=data behaves as connect here.
func awaitData(*net.TCPConn) (bool, error) { return true, nil }
