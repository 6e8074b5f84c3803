package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"app.localhost":       "app.localhost",
		"App.LocalHost":       "app.localhost",
		"app.localhost:8080":  "app.localhost",
		"APP.localhost.:8080": "app.localhost",
		"app.localhost.":      "app.localhost",
		"127.0.0.1:8080":      "127.0.0.1",
		"[::1]:8080":          "::1",
		"[::1]":               "::1",
		"":                    "",
		"app.localhost:":      "app.localhost",
		"::1":                 "::1",
		"a:b:c":               "a:b:c",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			if got := normalizeHost(in); got != want {
				t.Fatalf("normalizeHost(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestNormalizeHostCleanDoesNotAllocate(t *testing.T) {
	for _, h := range []string{"app.localhost", "app.localhost:8080", "app.localhost.:8080"} {
		if n := testing.AllocsPerRun(100, func() { _ = normalizeHost(h) }); n != 0 {
			t.Fatalf("%v allocations for %q", n, h)
		}
	}
}

// staticRoutes serves a fixed registry for routing tests.
type staticRoutes struct{ reg *watcher.Registry }

func (s staticRoutes) Routes() *watcher.Routes  { return s.reg.Routes() }
func (s staticRoutes) Changed() <-chan struct{} { return s.reg.Changed() }

func TestRoutingByHost(t *testing.T) {
	t.Parallel()
	reg := watcher.NewRegistry(watcher.RegistryConfig{Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	t0 := time.Now()
	for name, hosts := range map[string]string{"exact": "app.example.com", "wild": "*.example.com"} {
		reg.Apply(watcher.Container{ID: name, Name: name, Status: watcher.StatusStopped, Created: t0,
			Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": hosts}})
	}
	// A later claim on the same host (a younger container) is refused and
	// shows as an error; the older container keeps the route.
	reg.Apply(watcher.Container{ID: "dup", Name: "dup", Status: watcher.StatusStopped, Created: t0.Add(time.Second),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "APP.example.com"}})
	rt := reg.Routes()
	for host, want := range map[string]string{
		"app.example.com":   "exact",
		"other.example.com": "wild",
		"a.b.example.com":   "",
		"example.com":       "",
		"unknown.test":      "",
	} {
		got := ""
		if w := rt.Lookup(host); w != nil {
			got = w.Name()
		}
		if got != want {
			t.Errorf("Lookup(%q) = %q, want %q", host, got, want)
		}
	}
	var dupErr string
	for _, info := range reg.List() {
		if info.Name == "dup" {
			dupErr = info.Error
		}
	}
	if !strings.Contains(dupErr, "host app.example.com is already claimed by container exact") {
		t.Fatalf("dup error = %q", dupErr)
	}

	h := NewHandler(Config{Routes: staticRoutes{reg}, MaxHeld: 10, Log: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://nobody.test/", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusNotFound || !strings.Contains(string(body), `"nobody.test"`) {
		t.Fatalf("unknown host: %d %q, want 404 naming the host", rec.Code, body)
	}
}
