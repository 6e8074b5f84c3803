package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"sleeper/pkg/watcher"
)

// ServerConfig builds a Server.
type ServerConfig struct {
	Addr    string // main listener, routes by Host
	Handler *Handler
	Routes  Routes
	Log     *slog.Logger
	// Grace bounds how long in-flight requests may finish on shutdown.
	Grace time.Duration
	// ListenHost is the address the sleeper.listen ports bind on ("" = all).
	ListenHost string
	// Problems receives ports that cannot be bound, to show on the container.
	Problems ProblemReporter
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers (slowloris); 10 s when zero.
	ReadHeaderTimeout time.Duration
}

// ProblemReporter records a problem with a container's routes (see
// watcher.Registry.ReportProblem).
type ProblemReporter interface {
	ReportProblem(name, what string, err error)
}

// Server runs the main listener and one listener per sleeper.listen port,
// opening and closing the latter as containers come and go.
type Server struct {
	cfg ServerConfig
	log *slog.Logger

	mu     sync.Mutex
	extra  map[uint16]*http.Server
	ln     net.Listener
	wg     sync.WaitGroup
	failed map[uint16]string // ports that could not be bound, logged once
}

// NewServer returns a server; Run starts it.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	return &Server{cfg: cfg, log: cfg.Log, extra: map[uint16]*http.Server{}, failed: map[uint16]string{}}
}

// newHTTPServer applies the limits every front door shares. There is no
// write timeout: held requests, streams and upgraded connections are long.
// Headers over 64 KiB get 431.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// A held request finds its connection to notice its client leaving.
		ConnContext: withConn,
	}
}

// Listen binds the main listener, so that callers learn a bind error before
// Run and can read the address (":0" in tests).
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln.Addr(), nil
}

// Run serves until ctx ends, then stops accepting and lets in-flight
// requests finish within the grace period.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if _, err := s.Listen(); err != nil {
			return err
		}
	}
	main := s.newHTTPServer(s.cfg.Handler)
	errc := make(chan error, 1)
	go func() { errc <- main.Serve(s.ln) }()
	s.log.Info("proxy listening", "addr", s.ln.Addr().String())

	// A port that could not be bound (another process had it) is tried
	// again every few seconds, not only when the routes change.
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		changed := s.cfg.Routes.Changed()
		rt := s.cfg.Routes.Routes()
		s.syncListeners(rt.Listen)
		s.cfg.Handler.prune(rt)
		select {
		case <-changed:
			continue
		case <-retry.C:
			continue
		case err := <-errc:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Grace)
			s.shutdownExtra(ctx)
			cancel()
			return fmt.Errorf("proxy: %w", err)
		case <-ctx.Done():
		}
		break
	}
	// Every listener stops accepting at once, and they share one grace period.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.Grace)
	defer cancel()
	s.cfg.Handler.Shutdown()
	extraDone := make(chan struct{})
	go func() {
		defer close(extraDone)
		s.shutdownExtra(shutdownCtx)
	}()
	err := main.Shutdown(shutdownCtx)
	<-extraDone
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("grace period over, closing remaining connections", "grace", s.cfg.Grace.String())
		_ = main.Close()
	}
	<-errc
	return nil
}

// syncListeners opens listeners for new ports and closes those no longer claimed.
func (s *Server) syncListeners(want map[uint16]*watcher.Watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for port, srv := range s.extra {
		if _, ok := want[port]; !ok {
			_ = srv.Close()
			delete(s.extra, port)
			s.log.Info("listener closed", "port", port)
		}
	}
	ports := make([]uint16, 0, len(want))
	for p := range want {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, port := range ports {
		if _, ok := s.extra[port]; ok {
			continue
		}
		addr := net.JoinHostPort(s.cfg.ListenHost, strconv.Itoa(int(port)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if s.failed[port] != err.Error() {
				s.failed[port] = err.Error()
				s.log.Error("cannot open listen port", "container", want[port].Name(), "port", port, "error", err)
				s.cfg.Problems.ReportProblem(want[port].Name(), fmt.Sprintf("listen port %d", port), err)
			}
			continue
		}
		if _, ok := s.failed[port]; ok {
			delete(s.failed, port)
			s.cfg.Problems.ReportProblem(want[port].Name(), fmt.Sprintf("listen port %d", port), nil)
		}
		srv := s.newHTTPServer(s.cfg.Handler.ForPort(port))
		s.extra[port] = srv
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.Serve(ln)
		}()
		s.log.Info("listener opened", "port", port, "container", want[port].Name())
	}
}

func (s *Server) shutdownExtra(ctx context.Context) {
	s.mu.Lock()
	servers := make([]*http.Server, 0, len(s.extra))
	for _, srv := range s.extra {
		servers = append(servers, srv)
	}
	s.extra = map[uint16]*http.Server{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		})
	}
	wg.Wait()
	s.wg.Wait()
}
