package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

const (
	// maxDatagram is the largest UDP payload: reads never truncate.
	maxDatagram = 64 << 10
	// maxFlows bounds the clients one UDP stream tracks, so that a flood
	// of (spoofed) source addresses cannot grow sleeper without limit.
	maxFlows = 10000
	// maxListenerQueued bounds the bytes all flows of one stream keep while
	// waking: 10,000 flows times a flow's own bound would be 10 GiB.
	maxListenerQueued = 16 << 20
)

// udpListener is one UDP stream socket and the flows of its clients.
type udpListener struct {
	s   *Server
	key labels.Stream
	pc  *net.UDPConn

	mu     sync.Mutex // guards flows and every flow's queue
	flows  map[netip.AddrPort]*flow
	full   bool // maxFlows reached and logged
	queued int  // bytes queued over all flows
	over   bool // maxListenerQueued reached and logged
}

// flow is one client of a UDP stream. It has its own connected socket to the
// upstream, so that replies arrive on it and go back to that client alone.
type flow struct {
	l      *udpListener
	client netip.AddrPort
	log    *slog.Logger
	notify chan struct{} // signalled when datagrams are queued
	last   atomic.Int64  // UnixNano of the last datagram either way
	stale  atomic.Bool   // the upstream refused a datagram: resolve again
	q      queue         // guarded by l.mu

	// Only the flow's goroutine touches the rest.
	w       *watcher.Watcher // the watcher up was resolved for
	seen    uint64           // w.Generation() then: a new value means a new wake
	addr    string
	up      *net.UDPConn
	replies chan struct{} // closed when up's reply reader ended
	lastErr string        // the last failure logged, to log each once
}

// serveUDP reads datagrams until the socket is closed and hands each to its
// client's flow, creating the flow on a client's first datagram.
func (s *Server) serveUDP(ctx context.Context, key labels.Stream, pc *net.UDPConn) {
	l := &udpListener{s: s, key: key, pc: pc, flows: map[netip.AddrPort]*flow{}}
	buf := make([]byte, maxDatagram)
	var delay time.Duration
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			delay = backoff(delay)
			s.log.Warn("stream read failed", "stream", key.String(), "error", err, "retry_in", delay.String())
			if !pause(ctx, delay) {
				return
			}
			continue
		}
		delay = 0
		l.deliver(ctx, from, bytes.Clone(buf[:n]))
	}
}

// deliver queues a datagram on its client's flow. It never blocks the read
// loop: a full queue drops its oldest datagram instead.
func (l *udpListener) deliver(ctx context.Context, from netip.AddrPort, d []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.flows[from]
	if f == nil {
		if ctx.Err() != nil {
			return
		}
		if len(l.flows) >= maxFlows {
			if !l.full {
				l.full = true
				l.s.log.Warn("stream has too many clients, dropping datagrams from new ones",
					"stream", l.key.String(), "max_flows", maxFlows)
			}
			return
		}
		l.full = false
		f = &flow{
			l: l, client: from, notify: make(chan struct{}, 1),
			log: l.s.log.With("stream", l.key.String(), "client", from.String()),
			q:   newQueue(maxQueuedDatagrams, maxQueuedBytes),
		}
		l.flows[from] = f
		l.s.flowCount.Add(1)
		l.s.wg.Go(func() {
			defer l.s.flowCount.Add(-1)
			f.run(ctx)
		})
	}
	f.last.Store(time.Now().UnixNano())
	if l.queued+len(d) > maxListenerQueued {
		if !l.over {
			l.over = true
			l.s.log.Warn("stream queue full across its clients, dropping datagrams",
				"stream", l.key.String(), "max_bytes", maxListenerQueued)
		}
		return
	}
	l.over = false
	before := f.q.bytes
	if n := f.q.push(d); n > 0 {
		f.log.Debug("stream queue full, dropped the oldest datagrams", "dropped", n)
	}
	l.queued += f.q.bytes - before
	select {
	case f.notify <- struct{}{}:
	default: // already signalled
	}
}

// take removes f's queued datagrams.
func (l *udpListener) take(f *flow) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queued -= f.q.bytes
	return f.q.take()
}

// expire forgets f if it is idle and has nothing queued. Deciding under the
// lock deliver holds means a datagram is either queued before (and f lives
// on) or delivered to a fresh flow after.
func (l *udpListener) expire(f *flow) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f.q.len() > 0 || f.idleLeft() > 0 {
		return false
	}
	delete(l.flows, f.client)
	return true
}

func (f *flow) idleLeft() time.Duration {
	return time.Duration(f.last.Load() + int64(f.l.s.cfg.FlowIdleTimeout) - time.Now().UnixNano())
}

// run forwards the flow's datagrams until it has been idle for the flow
// idle timeout or its listener closes. It owns the flow's wakes and its
// upstream socket, and ends both before returning.
func (f *flow) run(ctx context.Context) {
	var wakes sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer wakes.Wait()
	defer cancel() // ends a wake in progress before waiting for it
	defer f.disconnect()
	idle := time.NewTimer(f.l.s.cfg.FlowIdleTimeout)
	defer idle.Stop()
	var woke chan error // non-nil while a wake runs
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.notify:
		case err := <-woke:
			woke = nil
			if err != nil {
				f.wakeFailed(ctx, err)
				continue
			}
		case <-idle.C:
			if woke != nil {
				// Never expires while its datagrams wait for a wake.
				idle.Reset(f.l.s.cfg.FlowIdleTimeout)
				continue
			}
			if f.l.expire(f) {
				f.log.Debug("stream flow expired")
				return
			}
			idle.Reset(max(f.idleLeft(), time.Millisecond))
			continue
		}
		if woke == nil {
			woke = f.forward(ctx, &wakes)
		}
	}
}

// forward sends the queued datagrams, in order, if the container is ready.
// Otherwise it starts waiting for the wake and returns the channel that
// receives its outcome; the datagrams stay queued meanwhile.
func (f *flow) forward(ctx context.Context, wakes *sync.WaitGroup) chan error {
	w := f.l.s.cfg.Routes.Routes().Streams[f.l.key]
	if w == nil {
		f.l.take(f) // the route is going away with its listener
		return nil
	}
	if !w.Acquire() {
		woke := make(chan error, 1)
		wakes.Go(func() {
			_, err := w.Wait(ctx) // within wake_timeout
			woke <- err
		})
		return woke
	}
	// Held only while sending: the batch counts as activity, but the flow
	// itself never keeps the container awake.
	defer w.Release()
	if err := f.connect(ctx, w); err != nil {
		f.l.take(f)
		f.failed(ctx, "stream upstream unreachable, dropping datagrams", err)
		return nil
	}
	// Sending is traffic too: a flow whose datagrams waited out a long wake
	// must live on for the replies, whatever its client's last send.
	f.last.Store(time.Now().UnixNano())
	for _, d := range f.l.take(f) {
		if _, err := f.up.Write(d); err != nil {
			// Usually an ICMP unreachable reported for an earlier
			// datagram. UDP promises nothing: the next one is tried anyway.
			f.log.Debug("stream datagram not sent", "container", w.Name(), "error", err)
		}
	}
	f.lastErr = ""
	return nil
}

// wakeFailed drops what the flow queued for a container that did not wake;
// the client's next datagram tries again.
func (f *flow) wakeFailed(ctx context.Context, err error) {
	f.l.take(f)
	f.failed(ctx, "stream wake failed, dropping datagrams", err)
}

// failed logs a failure once per distinct error, not once per datagram: a
// container in its crash backoff fails every datagram at once.
func (f *flow) failed(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil || err.Error() == f.lastErr {
		return
	}
	f.lastErr = err.Error()
	name := ""
	if w := f.l.s.cfg.Routes.Routes().Streams[f.l.key]; w != nil {
		name = w.Name()
	}
	f.log.Warn(msg, "container", name, "error", err)
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
	f.disconnect()
	d := net.Dialer{Timeout: f.l.s.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("container %s stream %s: dial %s: %w", w.Name(), f.l.key, addr, err)
	}
	up, done, t := c.(*net.UDPConn), make(chan struct{}), &toucher{w: w}
	f.up, f.replies, f.addr, f.w, f.seen = up, done, addr, w, u
	f.log.Debug("stream flow connected", "container", w.Name(), "upstream", addr)
	f.l.s.wg.Go(func() {
		defer close(done)
		f.readReplies(up, t)
	})
	return nil
}

// disconnect closes the upstream socket and waits for its reply reader.
func (f *flow) disconnect() {
	if f.up == nil {
		return
	}
	_ = f.up.Close()
	<-f.replies
	f.up, f.replies, f.addr = nil, nil, ""
}

// readReplies sends every datagram from the upstream back to the client
// until up is closed.
func (f *flow) readReplies(up *net.UDPConn, t *toucher) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := up.Read(buf)
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
			f.log.Debug("stream upstream read failed", "error", err)
			return
		}
		f.last.Store(time.Now().UnixNano())
		t.touch()
		if _, err := f.l.pc.WriteToUDPAddrPort(buf[:n], f.client); err != nil && !errors.Is(err, net.ErrClosed) {
			f.log.Debug("stream reply not sent", "error", err)
		}
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
