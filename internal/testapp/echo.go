package main

import (
	"errors"
	"io"
	"net"
	"sync"
)

// tcpEcho sends every byte back on each accepted connection. It tracks its connections
// so close can end them: a graceful exit must not wait for a client that never hangs up.
type tcpEcho struct {
	ln net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newTCPEcho(ln net.Listener) *tcpEcho {
	return &tcpEcho{ln: ln, conns: make(map[net.Conn]struct{})}
}

// serve accepts until the listener is closed; it returns nil after close.
func (e *tcpEcho) serve() error {
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !e.track(c) {
			c.Close()
			return nil
		}
		e.wg.Go(func() {
			defer e.untrack(c)
			defer c.Close()
			_, _ = io.Copy(c, c)
		})
	}
}

func (e *tcpEcho) track(c net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.conns[c] = struct{}{}
	return true
}

func (e *tcpEcho) untrack(c net.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.conns, c)
}

// close stops accepting, ends open connections and waits for their goroutines.
func (e *tcpEcho) close() {
	e.ln.Close()
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// serveUDPEcho replies each datagram to its sender until pc is closed, then returns nil.
func serveUDPEcho(pc net.PacketConn) error {
	buf := make([]byte, 64<<10) // the largest UDP payload
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		// A failed reply (e.g. ICMP unreachable from an earlier send) must not stop
		// the echo for everyone else.
		_, _ = pc.WriteTo(buf[:n], addr)
	}
}
