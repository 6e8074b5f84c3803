// Package admin serves sleeper's admin listener (--admin-addr): health,
// metrics, the containers API and the status page. It never proxies.
//
// Policy: reading is open (the listener is meant for a private network or
// loopback, like Traefik's dashboard port); changing anything (wake, sleep)
// needs the bearer token of --admin-token and is off, with 403, when no token
// is configured. Only containers sleeper manages can be targeted. API errors
// are JSON objects {"error": "..."}.
package admin

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"sleeper/pkg/watcher"
)

// Registry is what the admin listener needs of watcher.Registry.
type Registry interface {
	// List returns every known container, managed or not, sorted by name.
	List() []watcher.Info
	// Get returns the watcher of a managed container, or nil.
	Get(name string) *watcher.Watcher
}

// WakeCounter reports how many times a container woke; the metrics recorder
// has it. Optional: without it the status page has no wakes column.
type WakeCounter interface {
	Wakes(container string) uint64
}

// Health is sleeper's own health; watcher.EngineHealth has it.
type Health interface {
	// Check returns nil when sleeper is healthy, else why it is not.
	Check() error
}

// Config builds the admin handler.
type Config struct {
	// Health decides /healthz: 200 "ok" when Check returns nil, else 503
	// with the reason. Nil: always ok.
	Health Health
	// Registry lists and finds containers. Without it only /healthz and
	// /metrics are served, until Attach brings one.
	Registry Registry
	// Metrics serves GET /metrics; nil leaves it out.
	Metrics http.Handler
	// Wakes counts wakes for the status page; may be nil.
	Wakes WakeCounter
	// Token is --admin-token. Empty turns the mutating API off (403).
	Token string
	// Version is shown at the foot of the status page.
	Version string
	Log     *slog.Logger
	// Now is the clock for "idle time left"; time.Now when nil.
	Now func() time.Time
}

// server holds what the handlers share.
type server struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// tokenHash is the SHA-256 of the token, nil when none is configured.
	// Comparing fixed-size hashes keeps the compare constant-time even in
	// the token's length, which subtle.ConstantTimeCompare alone leaks.
	tokenHash []byte
}

// Handler is the admin mux. /healthz and /metrics answer from the start; the
// containers API and the status page once a registry is attached, because
// the admin listener opens before the engine answers and the registry needs
// the engine.
type Handler struct {
	mux        *http.ServeMux
	s          *server
	attachOnce sync.Once
	attached   atomic.Bool // set after the routes are in
}

// NewHandler returns the admin mux.
func NewHandler(cfg Config) *Handler {
	s := &server{cfg: cfg, log: cfg.Log, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		s.tokenHash = sum[:]
	}
	h := &Handler{mux: http.NewServeMux(), s: s}
	h.mux.HandleFunc("GET /healthz", s.healthz)
	if cfg.Metrics != nil {
		h.mux.Handle("GET /metrics", cfg.Metrics)
	}
	h.mux.HandleFunc("/", h.notFound)
	if cfg.Registry != nil {
		h.Attach(cfg.Registry)
	}
	return h
}

// ServeHTTP serves the admin listener.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(rw, r) }

// Attach adds the containers API and the status page over reg. Call it
// once; it is safe while requests are served (the mux's lock orders the
// registry's store before any request that reaches the new routes).
func (h *Handler) Attach(reg Registry) {
	h.attachOnce.Do(func() {
		s, mux := h.s, h.mux
		s.cfg.Registry = reg
		mux.HandleFunc("GET /{$}", s.statusPage)
		mux.Handle("GET /static/", serveStatic())
		mux.HandleFunc("GET /api/containers", s.listContainers)
		mux.HandleFunc("GET /api/containers/{name}", s.getContainer)
		mux.HandleFunc("POST /api/containers/{name}/wake", s.authorize(s.wake))
		mux.HandleFunc("POST /api/containers/{name}/sleep", s.authorize(s.sleep))
		mux.HandleFunc("/api/", func(rw http.ResponseWriter, r *http.Request) {
			writeError(rw, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
		})
		h.attached.Store(true)
	})
}

// notFound answers what no route matches: before Attach, the containers API
// is not there yet rather than missing.
func (h *Handler) notFound(rw http.ResponseWriter, r *http.Request) {
	if !h.attached.Load() {
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, "sleeper is starting: waiting for the docker engine", http.StatusServiceUnavailable)
		return
	}
	http.NotFound(rw, r)
}

// healthz answers 200 "ok", or 503 with the reason (still waiting for the
// engine, discovering, or the engine unreachable for too long), so that an
// orchestrator's probe and an operator's curl see the same thing.
func (s *server) healthz(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	if s.cfg.Health != nil {
		if err := s.cfg.Health.Check(); err != nil {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte("unhealthy: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = rw.Write([]byte("ok\n"))
}

// errorBody is every API error on the wire.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(rw http.ResponseWriter, code int, msg string) {
	writeJSON(rw, code, errorBody{Error: msg})
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(code)
	enc := json.NewEncoder(rw)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
