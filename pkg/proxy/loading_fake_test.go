package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// fake is the test kit's engine holding one container, "app", with the
// kit's app server behind it.
type fake struct {
	*watchertest.Engine
	app *watchertest.App
}

func newFake(t *testing.T) *fake {
	t.Helper()
	e := watchertest.NewEngine(watcher.Container{ID: "c1", Name: "app", Status: watcher.StatusStopped, Created: time.Now()})
	return &fake{Engine: e, app: watchertest.NewApp(t, e, "app")}
}

// hold makes the next starts wait until the returned gate is closed.
func (f *fake) hold() chan struct{} {
	gate := make(chan struct{})
	f.Behave("app", watchertest.Behaviour{Gate: gate})
	return gate
}

func testSpec() labels.Spec {
	return labels.Spec{
		Hosts: []string{"app.localhost"}, Scheme: "http", IdleTimeout: time.Hour,
		StopMethod: labels.StopMethodStop, StopTimeout: time.Second, WakeTimeout: 5 * time.Second,
		LoadingPage: true,
	}
}

func newTestWatcher(t *testing.T, f *fake, name string, spec labels.Spec) *watcher.Watcher {
	t.Helper()
	w := watcher.New(watcher.Config{Name: name, Spec: spec, Runtime: f, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(w.Close)
	f.Observe(w.Observe)
	w.Observe(f.Container("app"))
	return w
}

// outcomes records the request outcomes the handler reports.
type outcomes struct {
	watcher.NopRecorder
	mu  sync.Mutex
	got []string
}

func (o *outcomes) Request(_, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, outcome)
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.got)
}

// testHandler is a Handler with a short heartbeat and a recorder to look at.
func testHandler() (*Handler, *outcomes) {
	rec := &outcomes{}
	h := NewHandler(Config{MaxHeld: 100, Log: slog.New(slog.DiscardHandler), Recorder: rec})
	h.loading.heartbeat = 50 * time.Millisecond
	return h, rec
}

// serve runs one request through Serve for the given watcher.
func serve(h *Handler, w *watcher.Watcher, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.Serve(w, rec, r)
	return rec
}

func browserRequest(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	return r
}
