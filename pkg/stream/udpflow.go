package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"sleeper/pkg/watcher"
)

// flow is one client of a UDP stream. It has its own connected socket to the
// upstream, so that replies arrive on it and go back to that client alone.
type flow struct {
	l      *udpListener
	client netip.AddrPort

	// Guarded by l.mu.
	prev, next *flow     // in l.lru
	last       time.Time // the last datagram either way
	q          queue
	busy       bool // a worker runs for this flow
	gone       bool // forgotten by the listener; whoever ends last closes up

	stale atomic.Bool // the upstream refused a datagram: resolve again

	// Owned by the worker while busy, else by holders of l.mu.
	w       *watcher.Watcher // the watcher up was resolved for
	seen    uint64           // w.Generation() then: a new value means a new wake
	addr    string
	up      *net.UDPConn
	replies chan struct{} // closed when up's reply reader ended
	lastErr string        // the last failure logged, to log each once
}

// logger names the stream and the client; built only when there is
// something to say, so that an idle flow keeps no logger.
func (f *flow) logger() *slog.Logger {
	return f.l.s.log.With("stream", f.l.key.String(), "client", f.client.String())
}

// work forwards f's queued datagrams until there are none, waiting for a
// wake when the container is not ready. It runs only while f has work: an
// idle flow has no worker.
func (f *flow) work(ctx context.Context) {
	for f.l.more(f) {
		f.forward(ctx)
	}
}

// forward sends the queued datagrams, in order, if the container is ready.
// Otherwise it waits for the wake, leaving the datagrams queued meanwhile;
// the worker's next round sends them.
func (f *flow) forward(ctx context.Context) {
	w := f.l.s.cfg.Routes.Routes().Streams[f.l.key]
	if w == nil {
		f.l.take(f) // the route is going away with its listener
		return
	}
	if !w.Acquire() {
		if _, err := w.Wait(ctx); err != nil { // within wake_timeout
			// The client's next datagram tries again.
			f.l.take(f)
			f.failed(ctx, w, "stream wake failed, dropping datagrams", err)
		}
		return
	}
	// Held only while sending: the batch counts as activity, but the flow
	// itself never keeps the container awake.
	defer w.Release()
	if err := f.connect(ctx, w); err != nil {
		f.l.take(f)
		f.failed(ctx, w, "stream upstream unreachable, dropping datagrams", err)
		return
	}
	// Sending is traffic too: a flow whose datagrams waited out a long wake
	// must live on for the replies, whatever its client's last send.
	f.l.touch(f)
	for _, d := range f.l.take(f) {
		if _, err := f.up.Write(d); err != nil {
			// Usually an ICMP unreachable reported for an earlier
			// datagram. UDP promises nothing: the next one is tried anyway.
			f.logger().Debug("stream datagram not sent", "container", w.Name(), "error", err)
		}
	}
	f.lastErr = ""
}

// failed logs a failure once per distinct error, not once per datagram: a
// container in its crash backoff fails every datagram at once.
func (f *flow) failed(ctx context.Context, w *watcher.Watcher, msg string, err error) {
	if ctx.Err() != nil || err.Error() == f.lastErr {
		return
	}
	f.lastErr = err.Error()
	f.logger().Warn(msg, "container", w.Name(), "error", err)
}

// connect makes sure the flow has an upstream socket to where w's stream
// goes now. The address is resolved again after every wake, because the
// published port changes on every start: a wake shows as a new Generation,
// and one this flow slept through (someone else woke the container) as a
// refusal from the old port.
func (f *flow) connect(ctx context.Context, w *watcher.Watcher) error {
	u := w.Generation()
	alive := f.up != nil && !isClosed(f.replies)
	if alive && f.w == w && f.seen == u && !f.stale.Load() {
		return nil
	}
	addr, err := f.l.s.upstreamAddr(w, f.l.key)
	if err != nil {
		return err
	}
	f.stale.Store(false)
	if alive && addr == f.addr {
		f.w, f.seen = w, u
		return nil
	}
	f.closeUp()
	d := net.Dialer{Timeout: f.l.s.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("container %s stream %s: dial %s: %w", w.Name(), f.l.key, addr, err)
	}
	up, done := c.(*net.UDPConn), make(chan struct{})
	f.up, f.replies, f.addr, f.w, f.seen = up, done, addr, w, u
	f.logger().Debug("stream flow connected", "container", w.Name(), "upstream", addr)
	t := &toucher{w: w}
	f.l.s.wg.Go(func() {
		defer close(done)
		f.readReplies(up, t)
	})
	return nil
}

// closeUp closes the upstream socket; its reply reader ends on its own.
func (f *flow) closeUp() {
	if f.up != nil {
		_ = f.up.Close()
		f.up, f.replies, f.addr = nil, nil, ""
	}
}

// readReplies sends every datagram from the upstream back to the client
// until up is closed. It holds a buffer only while a datagram is there.
func (f *flow) readReplies(up *net.UDPConn, t *toucher) {
	for {
		bp, n, err := f.l.s.readDatagram(up)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, syscall.ECONNREFUSED):
			// ICMP port unreachable for a datagram we sent: nothing
			// listens there (yet), or the container moved to another
			// port. The next batch resolves again; the socket stays.
			f.stale.Store(true)
			continue
		case err != nil:
			f.logger().Debug("stream upstream read failed", "error", err)
			return
		}
		f.l.touch(f)
		t.touch()
		if _, err := f.l.pc.WriteToUDPAddrPort((*bp)[:n], f.client); err != nil && !errors.Is(err, net.ErrClosed) {
			f.logger().Debug("stream reply not sent", "error", err)
		}
		f.l.s.datagramBufs.Put(bp)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
