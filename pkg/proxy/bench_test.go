package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sleeper/internal/watchertest"
	"sleeper/pkg/watcher"
)

// readyRuntime is an engine with one running container, "bench".
func readyRuntime() *watchertest.Engine {
	return watchertest.NewEngine(watcher.Container{ID: "bench", Name: "bench", Status: watcher.StatusRunning, StartedAt: time.Unix(1, 0)})
}

// BenchmarkServeAwake is one request through the handler to a ready
// container and a real upstream over loopback: routing, the watcher's hot
// path, the reverse proxy and the upstream transport.
func BenchmarkServeAwake(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "hello\n")
	}))
	b.Cleanup(upstream.Close)
	log := slog.New(slog.DiscardHandler)
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: readyRuntime(), Log: log})
	b.Cleanup(reg.Close)
	reg.Apply(watcher.Container{ID: "bench", Name: "bench", Status: watcher.StatusRunning, StartedAt: time.Unix(1, 0),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "bench.localhost", "sleeper.upstream": upstream.URL}})
	for reg.Get("bench").State() != watcher.StateReady {
		time.Sleep(time.Millisecond)
	}
	h := NewHandler(Config{Routes: staticRoutes{reg}, MaxHeld: 10, Log: log})
	req := httptest.NewRequest(http.MethodGet, "http://bench.localhost/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.HasPrefix(rec.Body.String(), "hello") {
			b.Fatalf("%d %q", rec.Code, rec.Body.String())
		}
	}
}
