package stream

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// maxPending bounds the bytes kept from a client while its container wakes.
const maxPending = 64 << 10

// pending is what a client sent while its container woke.
type pending struct {
	buf  *[]byte // pooled backing array of data, returned by the caller
	data []byte
	eof  bool  // the client half-closed: nothing more will come
	err  error // the client reset or the read failed: the connection is dead
}

// flush writes the client's first bytes upstream, then half-closes the
// upstream if the client already did.
func (p *pending) flush(up *net.TCPConn) error {
	if len(p.data) > 0 {
		if _, err := up.Write(p.data); err != nil {
			return err
		}
	}
	if p.eof {
		return up.CloseWrite()
	}
	return nil
}

// readAhead reads a client's first bytes into a bounded buffer on its own
// goroutine, until the buffer is full, the client stops sending, or stop.
type readAhead struct {
	conn    net.Conn
	buf     []byte
	eof     bool
	err     error
	onError func() // called from the reading goroutine when the client is gone
	done    chan struct{}
}

// startReadAhead starts reading conn into buf[:cap(buf)]. onError runs when
// the client resets or the read fails, so that the caller stops waiting for
// a wake nobody will use.
func startReadAhead(conn net.Conn, buf []byte, onError func()) *readAhead {
	r := &readAhead{conn: conn, buf: buf[:0], onError: onError, done: make(chan struct{})}
	go r.run()
	return r
}

func (r *readAhead) run() {
	defer close(r.done)
	for len(r.buf) < cap(r.buf) {
		n, err := r.conn.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			r.eof = true
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			return // stop asked us to
		default:
			r.err = err
			r.onError()
			return
		}
	}
	// Full: reading no further leaves the rest in the kernel, and TCP flow
	// control pushes back on the client until the relay takes over.
}

// stop ends the reading and returns what was read. The connection is left
// without a deadline, ready for the relay.
func (r *readAhead) stop() *pending {
	// A deadline in the past wakes a blocked Read at once; the bytes it has
	// already taken from the kernel are returned with the error and kept.
	_ = r.conn.SetReadDeadline(time.Unix(1, 0))
	<-r.done
	_ = r.conn.SetReadDeadline(time.Time{})
	return &pending{data: r.buf, eof: r.eof, err: r.err}
}
