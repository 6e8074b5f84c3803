// Package stream is sleeper's L4 front door: one TCP or UDP listener per
// sleeper.streams entry, forwarding to the container's target port and waking
// the container on the first connection or datagram.
//
// Ownership and close policy: Run owns every listener, connection and UDP
// flow, and returns only after all of their goroutines ended. Listeners open
// and close as Routes().Streams changes. A stream that moves to another
// watcher (the same key claimed by a new container) keeps its listener: each
// new connection or batch of datagrams looks its watcher up afresh. Closing a
// listener, because its route went away or Run's context ended, closes the
// connections and flows it accepted.
//
// Activity: a TCP connection holds the watcher (Acquire) for its whole life,
// so an open connection keeps its container awake however quiet it is, and
// its bytes Touch the watcher at most once a second (checked per MiB relayed,
// so that the kernel can splice). A UDP flow holds nothing between datagrams:
// each batch it forwards, and each reply, counts as activity, and a flow
// never keeps a container awake by merely existing.
//
// The server never starts or stops a container itself: it asks the watcher.
package stream

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// Defaults for the zero values of Config.
const (
	DefaultFlowIdleTimeout = 60 * time.Second
	DefaultBindRetry       = 5 * time.Second
	DefaultDialTimeout     = 5 * time.Second
)

// Routes is what the server needs of the registry: the current streams and a
// channel closed at their next change.
type Routes interface {
	Routes() *watcher.Routes
	Changed() <-chan struct{}
}

// ProblemReporter records (err != nil) or clears (err == nil) a problem with
// a container's routes, such as a stream port that cannot be bound (see
// watcher.Registry.ReportProblem).
type ProblemReporter interface {
	ReportProblem(name, what string, err error)
}

// Config builds a Server.
type Config struct {
	Routes   Routes
	Problems ProblemReporter
	Log      *slog.Logger
	// FlowIdleTimeout drops a UDP flow after this long without a datagram
	// either way. Zero means DefaultFlowIdleTimeout.
	FlowIdleTimeout time.Duration
	// BindRetry is how often ports that could not be bound are tried again
	// (they are also tried on every route change). Zero means DefaultBindRetry.
	BindRetry time.Duration
	// DialTimeout bounds connecting to a ready upstream. Zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxHeld bounds the clients waiting for one container's wake, counted
	// together with its held HTTP requests (Watcher.AddHeld, the
	// sleeper_held_requests metric), as --max-held says. Zero means no limit.
	MaxHeld int
}

// Server runs one listener per stream route. Build it with NewServer and
// call Run once.
type Server struct {
	cfg Config
	log *slog.Logger

	// copyBufs holds copyBufSize buffers for relays the kernel cannot splice.
	copyBufs sync.Pool
	// pendingBufs holds maxPending buffers for a client's first bytes while
	// its container wakes.
	pendingBufs sync.Pool
	// datagramBufs holds maxDatagram buffers for UDP replies, borrowed per
	// datagram rather than held by every flow.
	datagramBufs sync.Pool

	// Only Run's goroutine touches these two.
	listeners map[labels.Stream]*listener
	failed    map[labels.Stream]bindFailure

	heldMu     sync.Mutex
	heldLogged map[string]uint64 // container → Generation of its last too-many-held log

	flowCount atomic.Int64 // UDP flows in the tables, for tests and debugging

	wg sync.WaitGroup // every goroutine the server started, joined by Run
}

// bindFailure is a stream port that could not be bound, reported on its container.
type bindFailure struct {
	name string // the container it was reported on
	err  string
}

// listener is one open socket and the loop that serves it.
type listener struct {
	sock   io.Closer
	cancel context.CancelFunc // ends the connections and flows it accepted
	done   chan struct{}      // closed when the accept or read loop returned
}

// close ends the listener's connections and flows and closes its socket. It
// waits for the loop, so the port is free again when it returns; connection
// and flow goroutines finish on their own and are joined by Run.
func (l *listener) close() {
	l.cancel()
	_ = l.sock.Close()
	<-l.done
}

// NewServer returns a server; Run starts it.
func NewServer(cfg Config) *Server {
	cfg.FlowIdleTimeout = cmp.Or(cfg.FlowIdleTimeout, DefaultFlowIdleTimeout)
	cfg.BindRetry = cmp.Or(cfg.BindRetry, DefaultBindRetry)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, DefaultDialTimeout)
	s := &Server{
		cfg:       cfg,
		log:       cfg.Log,
		listeners: map[labels.Stream]*listener{},
		failed:    map[labels.Stream]bindFailure{},

		heldLogged: map[string]uint64{},
	}
	s.copyBufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	s.pendingBufs.New = func() any { b := make([]byte, maxPending); return &b }
	s.datagramBufs.New = func() any { b := make([]byte, maxDatagram); return &b }
	return s
}

// Run keeps the listeners in step with the routes until ctx ends, then closes
// every listener, connection and flow and returns once all of their
// goroutines ended. A port that cannot be bound is not fatal: it is reported
// on its container and tried again. Run always returns nil.
func (s *Server) Run(ctx context.Context) error {
	retry := time.NewTimer(s.cfg.BindRetry)
	retry.Stop()
	defer s.shutdown()
	for {
		changed := s.cfg.Routes.Changed()
		s.sync(ctx, s.cfg.Routes.Routes().Streams)
		var retryC <-chan time.Time
		if len(s.failed) > 0 {
			retry.Reset(s.cfg.BindRetry)
			retryC = retry.C
		}
		select {
		case <-changed:
		case <-retryC:
		case <-ctx.Done():
			retry.Stop()
			return nil
		}
		retry.Stop()
	}
}

func (s *Server) shutdown() {
	for key, l := range s.listeners {
		l.close()
		delete(s.listeners, key)
	}
	s.wg.Wait()
}

// sync closes the listeners no route wants any more and opens the missing ones.
func (s *Server) sync(ctx context.Context, want map[labels.Stream]*watcher.Watcher) {
	for key, l := range s.listeners {
		if _, ok := want[key]; !ok {
			l.close()
			delete(s.listeners, key)
			s.log.Info("stream listener closed", "stream", key.String())
		}
	}
	for key, f := range s.failed {
		if w, ok := want[key]; !ok || w.Name() != f.name {
			delete(s.failed, key)
			s.cfg.Problems.ReportProblem(f.name, problemKey(key), nil)
		}
	}
	// Sorted, so that two specs in one container that collide on sleeper
	// (5432:5432 and 127.0.0.1:5432:5433) fail the same one every time.
	keys := make([]labels.Stream, 0, len(want))
	for key := range want {
		if _, ok := s.listeners[key]; !ok {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, compareStreams)
	for _, key := range keys {
		name := want[key].Name()
		l, err := s.open(ctx, key)
		if err != nil {
			s.bindFailed(name, key, err)
			continue
		}
		s.listeners[key] = l
		if _, ok := s.failed[key]; ok {
			delete(s.failed, key)
			s.cfg.Problems.ReportProblem(name, problemKey(key), nil)
		}
		s.log.Info("stream listener opened", "container", name, "stream", key.String())
	}
}

// bindFailed reports a port that cannot be bound on its container, logging
// each distinct error once rather than on every retry.
func (s *Server) bindFailed(name string, key labels.Stream, err error) {
	if f, ok := s.failed[key]; ok && f.name == name && f.err == err.Error() {
		return
	}
	s.failed[key] = bindFailure{name: name, err: err.Error()}
	s.log.Error("cannot open stream listener", "container", name, "stream", key.String(), "error", err)
	s.cfg.Problems.ReportProblem(name, problemKey(key), err)
}

// problemKey names a stream in the container's error, e.g. "stream 5432:5432/tcp".
func problemKey(key labels.Stream) string { return "stream " + key.String() }

// open binds the stream's socket and starts the loop that serves it.
func (s *Server) open(ctx context.Context, key labels.Stream) (*listener, error) {
	addr := listenAddr(key)
	lctx, cancel := context.WithCancel(ctx)
	l := &listener{cancel: cancel, done: make(chan struct{})}
	switch key.Protocol {
	case labels.UDP:
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			cancel()
			return nil, err
		}
		l.sock = pc
		s.wg.Go(func() {
			defer close(l.done)
			s.serveUDP(lctx, key, pc.(*net.UDPConn))
		})
	default:
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			cancel()
			return nil, err
		}
		l.sock = ln
		s.wg.Go(func() {
			defer close(l.done)
			s.serveTCP(lctx, key, ln.(*net.TCPListener))
		})
	}
	return l, nil
}

// listenAddr is where sleeper listens for a stream: its IP, else every address.
func listenAddr(key labels.Stream) string {
	host := ""
	if key.IP.IsValid() {
		host = key.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(int(key.Listen)))
}

func compareStreams(a, b labels.Stream) int {
	return cmp.Or(
		cmp.Compare(a.Listen, b.Listen),
		strings.Compare(string(a.Protocol), string(b.Protocol)),
		a.IP.Compare(b.IP),
		cmp.Compare(a.Target, b.Target),
	)
}

// upstreamAddr is where a stream of w goes, resolved afresh from the last
// observed container: published ports and IPs change on every start.
func (s *Server) upstreamAddr(w *watcher.Watcher, key labels.Stream) (string, error) {
	spec := w.Spec()
	if spec.Upstream != nil {
		// An explicit upstream names the machine (a VM, an LXC, another
		// host); each stream keeps its own target port there.
		return net.JoinHostPort(spec.Upstream.Hostname(), strconv.Itoa(int(key.Target))), nil
	}
	proto := string(cmp.Or(key.Protocol, labels.TCP))
	addr, err := watcher.ResolveAddr(w.Observed(), key.Target, proto, spec.Network, w.SelfNetworks())
	if err != nil {
		return "", fmt.Errorf("container %s stream %s: %w", w.Name(), key, err)
	}
	return addr, nil
}

// backoff is the next pause after a failed accept or read: doubling from
// 5 ms to 1 s, as net/http does, so that running out of file descriptors
// neither spins nor stalls for long.
func backoff(d time.Duration) time.Duration {
	return min(max(2*d, 5*time.Millisecond), time.Second)
}

// pause waits d or until ctx ends; it reports whether ctx is still alive.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
