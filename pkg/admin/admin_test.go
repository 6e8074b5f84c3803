package admin

import (
	"sleeper/internal/watchertest"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

const testToken = "s3cret-token"

// app is an upstream that answers every request.
func app(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// deadUpstream is an address nothing listens on: a wake to it never gets
// ready and times out.
func deadUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// container builds a stopped, labelled container.
func container(name, upstream string, extra ...string) watcher.Container {
	l := map[string]string{
		"sleeper.enable":       "true",
		"sleeper.hosts":        name + ".localhost",
		"sleeper.upstream":     upstream,
		"sleeper.wake_timeout": "5s",
		"sleeper.idle_timeout": "1h",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		l["sleeper."+extra[i]] = extra[i+1]
	}
	return watcher.Container{
		ID: "id-" + name, Name: name, Labels: l, Created: time.Now(), Status: watcher.StatusStopped,
	}
}

// fixture is an admin server over a real registry.
type fixture struct {
	srv *httptest.Server
	reg *watcher.Registry
	rt  *watchertest.Engine
}

func newFixture(t *testing.T, cfg Config, cs ...watcher.Container) *fixture {
	t.Helper()
	rt := watchertest.NewEngine()
	log := slog.New(slog.DiscardHandler)
	reg := watcher.NewRegistry(watcher.RegistryConfig{
		Runtime: rt, Provider: "docker",
		Log:    log,
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour},
	})
	t.Cleanup(reg.Close)
	for _, c := range cs {
		rt.Set(c)
		reg.Apply(c)
	}
	cfg.Registry = reg
	cfg.Log = log
	srv := httptest.NewServer(NewHandler(cfg))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, reg: reg, rt: rt}
}

// do sends a request and returns the status, headers and body.
func (f *fixture) do(t *testing.T, method, path, auth string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// apiError decodes an API error body, failing when it is not one.
func apiError(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error body: %q (%v)", body, err)
	}
	return e.Error
}

// healthFunc adapts a func to Health.
type healthFunc func() error

func (f healthFunc) Check() error { return f() }

// TestHealthz: 200 ok when healthy, else 503 with the reason, and never
// cached.
func TestHealthz(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		health   Health
		wantCode int
		wantBody string
	}{
		{"no health configured", nil, 200, "ok\n"},
		{"healthy", healthFunc(func() error { return nil }), 200, "ok\n"},
		{"waiting for the engine", healthFunc(func() error {
			return fmt.Errorf("%w: dial unix /var/run/docker.sock: connect: no such file", watcher.ErrEngineWaiting)
		}), 503, "unhealthy: waiting for the engine: dial unix /var/run/docker.sock: connect: no such file\n"},
		{"discovering", healthFunc(func() error { return watcher.ErrDiscovering }), 503, "unhealthy: discovering containers\n"},
		{"engine down too long", healthFunc(func() error {
			return fmt.Errorf("%w for 1m5s", watcher.ErrEngineDown)
		}), 503, "unhealthy: engine unreachable for 1m5s\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{Health: tt.health})
			code, h, body := f.do(t, "GET", "/healthz", "")
			if code != tt.wantCode || body != tt.wantBody {
				t.Fatalf("/healthz: %d %q, want %d %q", code, body, tt.wantCode, tt.wantBody)
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", h.Get("Cache-Control"))
			}
		})
	}
}

// TestHealthzFollowsEngineHealth drives the real watcher.EngineHealth behind
// /healthz through startup: 503 with a reason until the engine has answered
// and the first list is done, then 200.
func TestHealthzFollowsEngineHealth(t *testing.T) {
	t.Parallel()
	eh := watcher.NewEngineHealth(watcher.EngineHealthConfig{Engine: "docker engine"})
	f := newFixture(t, Config{Health: eh})
	eh.EngineDown(errors.New("connection refused"))
	if code, _, body := f.do(t, "GET", "/healthz", ""); code != 503 || !strings.Contains(body, "waiting for the docker engine: connection refused") {
		t.Fatalf("engine down at start: %d %q", code, body)
	}
	eh.EngineUp()
	if code, _, body := f.do(t, "GET", "/healthz", ""); code != 503 || !strings.Contains(body, "discovering containers") {
		t.Fatalf("engine up, not listed: %d %q", code, body)
	}
	eh.Synced()
	if code, _, body := f.do(t, "GET", "/healthz", ""); code != 200 || body != "ok\n" {
		t.Fatalf("synced: %d %q", code, body)
	}
}

// TestAttachLater: before the registry exists (the engine has not answered)
// health answers and the containers API says 503, not 404; after Attach it
// is served.
func TestAttachLater(t *testing.T) {
	t.Parallel()
	h := NewHandler(Config{Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func(path string) int {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz"); code != 200 {
		t.Fatalf("/healthz before Attach: %d", code)
	}
	if code := get("/api/containers"); code != 503 {
		t.Fatalf("/api/containers before Attach: %d, want 503", code)
	}
	f := newFixture(t, Config{}, container("app", app(t)))
	h.Attach(f.reg)
	if code := get("/api/containers/app"); code != 200 {
		t.Fatalf("/api/containers/app after Attach: %d, want 200", code)
	}
	if code := get("/nope"); code != 404 {
		t.Fatalf("/nope after Attach: %d, want 404", code)
	}
}

func TestMetricsRoute(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "sleeper_build_info 1\n")
	})
	f := newFixture(t, Config{Metrics: metrics})
	if code, _, body := f.do(t, "GET", "/metrics", ""); code != 200 || !strings.Contains(body, "sleeper_build_info") {
		t.Fatalf("/metrics: %d %q", code, body)
	}
}

func TestUnknownAPIPathIsJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	code, _, body := f.do(t, "GET", "/api/nope", "")
	if code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", code)
	}
	apiError(t, body)
}
