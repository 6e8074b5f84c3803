package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// errClientGone ends a wake wait whose client hung up or reset meanwhile.
var errClientGone = errors.New("client went away")

// errTooManyHeld refuses a client beyond --max-held waiting for one wake.
var errTooManyHeld = errors.New("too many clients waiting for the wake")

// serveTCP accepts until the listener is closed. Each connection is served on
// its own goroutine under ctx, which ends with the listener.
func (s *Server) serveTCP(ctx context.Context, key labels.Stream, ln *net.TCPListener) {
	var delay time.Duration
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			delay = backoff(delay)
			s.log.Warn("stream accept failed", "stream", key.String(), "error", err, "retry_in", delay.String())
			if !pause(ctx, delay) {
				return
			}
			continue
		}
		delay = 0
		s.wg.Go(func() { s.handleTCP(ctx, key, c) })
	}
}

// handleTCP relays one client connection. The container is acquired for the
// connection's whole life, so an open connection keeps it awake.
func (s *Server) handleTCP(ctx context.Context, key labels.Stream, client *net.TCPConn) {
	defer client.Close()
	// Looked up per connection: the key may have moved to a new watcher (a
	// new container claiming the same stream) since the listener opened.
	w := s.cfg.Routes.Routes().Streams[key]
	if w == nil {
		return // the route went away between accept and now
	}
	if w.Spec().StreamWake == labels.StreamWakeData {
		if !awaitFirstByte(ctx, client) {
			// A bare connect (a port scanner, a TCP monitor): no wake,
			// no activity.
			return
		}
		if w = s.cfg.Routes.Routes().Streams[key]; w == nil {
			return
		}
	}
	var p *pending
	if !w.Acquire() {
		var err error
		if p, err = s.wakeTCP(ctx, w, client); err != nil {
			s.logWakeFailure(ctx, w, s.connLog(w, key, client), err)
			return
		}
	}
	defer w.Release()
	up, err := s.dialTCP(ctx, w, key)
	if err != nil {
		s.release(p)
		s.connLog(w, key, client).Warn("stream upstream unreachable, closing client", "error", err)
		return
	}
	defer up.Close()
	// Both sockets close when the listener or the server goes away: that
	// ends the copies below, however quiet the connection is.
	stop := context.AfterFunc(ctx, func() {
		_ = client.Close()
		_ = up.Close()
	})
	defer stop()
	clientDone := false
	if p != nil {
		err := p.flush(up)
		clientDone = p.eof
		s.release(p)
		if err != nil {
			s.connLog(w, key, client).Debug("stream upstream closed before the first bytes", "error", err)
			return
		}
	}
	s.relay(w, client, up, clientDone)
}

// connLog names the container, the stream and the client. It is built only
// when there is something to say, keeping the awake path free of it.
func (s *Server) connLog(w *watcher.Watcher, key labels.Stream, client net.Conn) *slog.Logger {
	return s.log.With("container", w.Name(), "stream", key.String(), "client", client.RemoteAddr().String())
}

// release returns a pending buffer to the pool once its bytes are sent, so
// a long connection does not hold 64 KiB for nothing.
func (s *Server) release(p *pending) {
	if p != nil {
		s.pendingBufs.Put(p.buf)
		p.buf, p.data = nil, nil
	}
}

// awaitFirstByte waits, holding no buffer, until the client sends a byte
// (true) or closes, resets or ctx ends (false). The byte stays in the
// socket for the relay.
func awaitFirstByte(ctx context.Context, client *net.TCPConn) bool {
	stop := context.AfterFunc(ctx, func() { _ = client.SetReadDeadline(time.Unix(1, 0)) })
	ok, _ := awaitData(client)
	return stop() && ok
}

// logWakeFailure says why a client was closed without reaching the container.
func (s *Server) logWakeFailure(ctx context.Context, w *watcher.Watcher, log *slog.Logger, err error) {
	switch {
	case ctx.Err() != nil:
		// Shutting down, or the route went away: not the container's fault.
	case errors.Is(err, errTooManyHeld):
		s.tooManyHeld(w, log)
	case errors.Is(err, errClientGone):
		log.Debug("stream client left during the wake")
	default:
		log.Warn("stream wake failed, closing client", "error", err)
	}
}

// wakeTCP wakes w and returns with it acquired. Meanwhile it reads the
// client's first bytes into a bounded buffer: protocols where the client
// speaks first (Postgres, Minecraft) then start at once, and a client that
// sends more than the buffer holds is slowed down by TCP flow control rather
// than by our memory.
//
// A waiting client counts against --max-held with the container's held
// HTTP requests, in one budget; beyond it the client is closed at once.
func (s *Server) wakeTCP(ctx context.Context, w *watcher.Watcher, client *net.TCPConn) (*pending, error) {
	n := w.AddHeld(1)
	defer w.AddHeld(-1)
	if s.cfg.MaxHeld > 0 && n > int64(s.cfg.MaxHeld) {
		return nil, errTooManyHeld
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	buf := s.pendingBufs.Get().(*[]byte)
	ra := startReadAhead(client, *buf, func() { cancel(errClientGone) })
	_, err := w.AcquireWait(ctx)
	p := ra.stop()
	p.buf = buf
	if err == nil && p.err != nil {
		w.Release()
		err = errClientGone
	}
	if err != nil {
		s.pendingBufs.Put(buf)
		return nil, err
	}
	return p, nil
}

// tooManyHeld logs refused clients once per wake of their container, not
// once per client: a herd past the limit would flood the log.
func (s *Server) tooManyHeld(w *watcher.Watcher, log *slog.Logger) {
	gen := w.Generation() // moves on with each successful wake
	s.heldMu.Lock()
	last, seen := s.heldLogged[w.Name()]
	s.heldLogged[w.Name()] = gen
	s.heldMu.Unlock()
	if seen && last == gen {
		return
	}
	log.Warn("too many clients waiting for the wake, closing new ones", "max_held", s.cfg.MaxHeld)
}

// dialTCP connects to where the stream goes now. The address is resolved
// per connection, so a wake that moved the published port is followed.
func (s *Server) dialTCP(ctx context.Context, w *watcher.Watcher, key labels.Stream) (*net.TCPConn, error) {
	addr, err := s.upstreamAddr(w, key)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("container %s stream %s: dial %s: %w", w.Name(), key, addr, err)
	}
	return c.(*net.TCPConn), nil
}
