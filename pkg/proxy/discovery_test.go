package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/internal/watchertest"
	"sleeper/pkg/watcher"
)

// lookedUp tells the test when the handler has looked its routes up once.
type lookedUp struct {
	staticRoutes
	once  sync.Once
	first chan struct{}
}

func (l *lookedUp) Routes() *watcher.Routes {
	defer l.once.Do(func() { close(l.first) })
	return l.staticRoutes.Routes()
}

// discoveryFixture is a handler over an empty registry whose first
// discovery has not finished, and an app to route to once it has.
type discoveryFixture struct {
	h          *Handler
	reg        *watcher.Registry
	routes     *lookedUp
	discovered chan struct{}
	app        watcher.Container
}

func newDiscoveryFixture(t *testing.T) *discoveryFixture {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "from the app")
	}))
	t.Cleanup(backend.Close)
	log := slog.New(slog.DiscardHandler)
	app := watcher.Container{ID: "app", Name: "app", Status: watcher.StatusRunning, Created: time.Now(),
		StartedAt: time.Now(), Labels: map[string]string{
			"sleeper.enable": "true", "sleeper.hosts": "app.localhost", "sleeper.upstream": backend.URL,
		}}
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: watchertest.NewEngine(app), Log: log})
	t.Cleanup(reg.Close)
	f := &discoveryFixture{
		reg:        reg,
		routes:     &lookedUp{staticRoutes: staticRoutes{reg}, first: make(chan struct{})},
		discovered: make(chan struct{}),
		app:        app,
	}
	f.h = NewHandler(Config{Routes: f.routes, MaxHeld: 10, Log: log, Discovered: f.discovered})
	return f
}

// serve runs one request in the background.
func (f *discoveryFixture) serve(host string) <-chan *httptest.ResponseRecorder {
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil))
		done <- rec
	}()
	return done
}

func awaitAnswer(t *testing.T, done <-chan *httptest.ResponseRecorder) (int, string) {
	t.Helper()
	select {
	case rec := <-done:
		return rec.Code, rec.Body.String()
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return 0, ""
	}
}

// TestRequestDuringDiscoveryIsRouted: a request for a host that is not known
// yet, arriving while the first discovery runs, waits for it and reaches the
// app the discovery finds, instead of a 404.
func TestRequestDuringDiscoveryIsRouted(t *testing.T) {
	t.Parallel()
	f := newDiscoveryFixture(t)
	done := f.serve("app.localhost")
	<-f.routes.first // the request has missed once: only now does the app appear
	f.reg.Apply(f.app)
	close(f.discovered)
	if code, body := awaitAnswer(t, done); code != http.StatusOK || body != "from the app" {
		t.Fatalf("request during discovery: %d %q, want 200 from the app", code, body)
	}
}

// TestUnknownHostAfterDiscovery404s: once discovery is done, an unknown host
// is refused at once (the wait is an hour here: any waiting would hang).
func TestUnknownHostAfterDiscovery404s(t *testing.T) {
	t.Parallel()
	f := newDiscoveryFixture(t)
	f.h.discovery.wait = time.Hour
	f.reg.Apply(f.app)
	close(f.discovered)
	code, body := awaitAnswer(t, f.serve("nobody.test"))
	if code != http.StatusNotFound || !strings.Contains(body, `"nobody.test"`) {
		t.Fatalf("unknown host after discovery: %d %q, want 404", code, body)
	}
	if code, _ := awaitAnswer(t, f.serve("app.localhost")); code != http.StatusOK {
		t.Fatalf("known host: %d", code)
	}
}

// TestUnknownHostDuringDiscoveryIsBounded: if discovery does not finish (the
// engine stopped answering), the request is refused after the bound.
func TestUnknownHostDuringDiscoveryIsBounded(t *testing.T) {
	t.Parallel()
	f := newDiscoveryFixture(t)
	f.h.discovery.wait = 20 * time.Millisecond
	if code, _ := awaitAnswer(t, f.serve("nobody.test")); code != http.StatusNotFound {
		t.Fatalf("unknown host, discovery stuck: %d, want 404 after the bound", code)
	}
}
