package stream

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"sleeper/pkg/labels"
)

const (
	// maxDatagram is the largest UDP payload: reads never truncate.
	maxDatagram = 64 << 10
	// maxFlows bounds the clients one UDP stream tracks. A new client
	// beyond it evicts the least recently active one, so a flood of
	// (spoofed) source addresses costs at most maxFlows idle flows (a
	// socket and a parked reader each, about 10 KB) and never locks new
	// clients out.
	maxFlows = 4096
	// maxListenerQueued bounds the bytes all flows of one stream keep while
	// waking: maxFlows times a flow's own bound would be 4 GiB.
	maxListenerQueued = 16 << 20
)

// udpListener is one UDP stream socket and the flows of its clients.
//
// Memory policy: an idle flow holds its upstream socket and one goroutine
// parked on it, but no buffer (replies borrow one from the server's pool
// only once a datagram is there to read). A flow has a second goroutine, its
// worker, only while it has datagrams to forward or waits for a wake.
type udpListener struct {
	s   *Server
	key labels.Stream
	pc  *net.UDPConn

	mu      sync.Mutex // guards everything below and every flow's l.mu fields
	flows   map[netip.AddrPort]*flow
	lru     flowList // most recently active first
	queued  int      // bytes queued over all flows
	full    bool     // maxFlows reached and logged
	over    bool     // maxListenerQueued reached and logged
	closed  bool     // the listener ended: no new flows
	sweepCh chan struct{}
}

// serveUDP reads datagrams until the socket is closed and hands each to its
// client's flow, creating the flow on a client's first datagram.
func (s *Server) serveUDP(ctx context.Context, key labels.Stream, pc *net.UDPConn) {
	l := &udpListener{
		s: s, key: key, pc: pc, flows: map[netip.AddrPort]*flow{},
		sweepCh: make(chan struct{}, 1),
	}
	defer l.closeAll()
	s.wg.Go(func() { l.sweep(ctx) })
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

// deliver queues a datagram on its client's flow and makes sure a worker
// forwards it. It never blocks the read loop: a full queue drops its oldest
// datagram instead.
func (l *udpListener) deliver(ctx context.Context, from netip.AddrPort, d []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.flows[from]
	if f == nil {
		if ctx.Err() != nil || l.closed {
			return
		}
		f = l.addLocked(from)
	}
	l.touchLocked(f)
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
		f.logger().Debug("stream queue full, dropped the oldest datagrams", "dropped", n)
	}
	l.queued += f.q.bytes - before
	if !f.busy {
		f.busy = true
		l.s.wg.Go(func() { f.work(ctx) })
	}
}

// addLocked creates the flow of a new client, evicting the least recently
// active flow when the table is full.
func (l *udpListener) addLocked(from netip.AddrPort) *flow {
	if len(l.flows) >= maxFlows {
		if !l.full {
			l.full = true
			l.s.log.Warn("stream has too many clients, forgetting the least recently active ones",
				"stream", l.key.String(), "max_flows", maxFlows)
		}
		if old := l.lru.back(); old != nil {
			old.logger().Debug("stream flow evicted")
			l.removeLocked(old)
		}
	}
	f := &flow{l: l, client: from, q: newQueue(maxQueuedDatagrams, maxQueuedBytes)}
	l.flows[from] = f
	l.lru.pushFront(f)
	l.s.flowCount.Add(1)
	if len(l.flows) == 1 {
		select {
		case l.sweepCh <- struct{}{}:
		default:
		}
	}
	return f
}

// touchLocked records activity on f: it becomes the most recently active.
func (l *udpListener) touchLocked(f *flow) {
	f.last = time.Now()
	l.lru.moveToFront(f)
}

// touch is touchLocked for a reply, unless f has been forgotten meanwhile.
func (l *udpListener) touch(f *flow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !f.gone {
		l.touchLocked(f)
	}
}

// removeLocked forgets f and drops what it queued. Its socket is closed
// now if no worker runs, else by the worker as it ends.
func (l *udpListener) removeLocked(f *flow) {
	delete(l.flows, f.client)
	l.lru.remove(f)
	l.queued -= f.q.bytes
	f.q.take()
	f.gone = true
	l.s.flowCount.Add(-1)
	if !f.busy {
		f.closeUp()
	}
}

// take removes f's queued datagrams.
func (l *udpListener) take(f *flow) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queued -= f.q.bytes
	return f.q.take()
}

// more reports whether f's worker has datagrams to forward. When it has
// none, the worker ends: the flow is idle again (or gone, and then its
// socket is closed here).
func (l *udpListener) more(f *flow) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !f.gone && f.q.len() > 0 {
		return true
	}
	f.busy = false
	if f.gone {
		f.closeUp()
	}
	return false
}

// sweep forgets flows idle for the flow idle timeout. It runs only while the
// listener has flows, so an idle stream costs no CPU.
func (l *udpListener) sweep(ctx context.Context) {
	every := max(l.s.cfg.FlowIdleTimeout/4, time.Millisecond)
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.sweepCh:
		}
		for l.expire() > 0 {
			if !pause(ctx, every) {
				return
			}
		}
	}
}

// expire forgets the idle flows and returns how many remain. A flow whose
// worker runs (datagrams waiting for a wake) is never idle.
func (l *udpListener) expire() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	cutoff := time.Now().Add(-l.s.cfg.FlowIdleTimeout)
	for f := l.lru.back(); f != nil && f.last.Before(cutoff); {
		prev := f.prev
		if !f.busy && f.q.len() == 0 {
			f.logger().Debug("stream flow expired")
			l.removeLocked(f)
			if len(l.flows) < maxFlows {
				l.full = false
			}
		}
		f = prev
	}
	return len(l.flows)
}

// closeAll forgets every flow as the listener ends; workers see the
// listener's context end and close their sockets themselves.
func (l *udpListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, f := range l.flows {
		l.removeLocked(f)
	}
}

// flowList is an intrusive doubly linked list of flows, cheaper per flow
// than container/list.
type flowList struct{ front, tail *flow }

func (fl *flowList) back() *flow { return fl.tail }

func (fl *flowList) pushFront(f *flow) {
	f.prev, f.next = nil, fl.front
	if fl.front != nil {
		fl.front.prev = f
	}
	fl.front = f
	if fl.tail == nil {
		fl.tail = f
	}
}

func (fl *flowList) remove(f *flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		fl.front = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		fl.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

func (fl *flowList) moveToFront(f *flow) {
	if fl.front == f {
		return
	}
	fl.remove(f)
	fl.pushFront(f)
}
