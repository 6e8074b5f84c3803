package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// fakeRuntime is an in-memory engine with one container, after the pattern
// of pkg/watcher's fake. Its app (an httptest server) answers once appUp is
// set; until then it hangs up like docker-proxy with nothing listening.
// holdStart, when set, makes Start wait until it is closed.
type fakeRuntime struct {
	watcher.Runtime // unimplemented methods panic

	app *httptest.Server

	mu          sync.Mutex
	c           watcher.Container
	appUp       bool
	holdStart   chan struct{}
	exitOnStart bool
	startErr    error // returned by Start, as an engine that refuses would
	starts      int
	onDie       func(watcher.Container) // tells the watcher, as the reconciler would
}

func newFake(t *testing.T) *fakeRuntime {
	t.Helper()
	f := &fakeRuntime{appUp: true}
	f.app = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		up := f.appUp && f.c.Status == watcher.StatusRunning
		f.mu.Unlock()
		if !up {
			conn, _, _ := http.NewResponseController(rw).Hijack()
			_ = conn.Close()
			return
		}
		_, _ = io.WriteString(rw, "hello from app at "+r.URL.RequestURI())
	}))
	t.Cleanup(f.app.Close)
	f.c = watcher.Container{
		ID: "c1", Name: "app", Status: watcher.StatusStopped, Created: time.Now(),
		Published: map[string]string{"80/tcp": strings.TrimPrefix(f.app.URL, "http://")},
	}
	return f
}

func (f *fakeRuntime) Inspect(_ context.Context, ref string) (watcher.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref != f.c.ID && ref != f.c.Name {
		return watcher.Container{}, watcher.ErrNotFound
	}
	return f.c, nil
}

func (f *fakeRuntime) Start(ctx context.Context, _ string) error {
	f.mu.Lock()
	hold := f.holdStart
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.starts++
	if f.startErr != nil {
		defer f.mu.Unlock()
		return f.startErr
	}
	f.c.Status, f.c.StartedAt = watcher.StatusRunning, time.Now()
	if f.exitOnStart {
		f.c.Status, f.c.ExitCode, f.c.FinishedAt = watcher.StatusStopped, 3, time.Now()
		died, cb := f.c, f.onDie
		f.mu.Unlock()
		if cb != nil {
			time.AfterFunc(20*time.Millisecond, func() { cb(died) })
		}
		return nil
	}
	f.mu.Unlock()
	return nil
}

func (f *fakeRuntime) setAppUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appUp = up
}

func (f *fakeRuntime) startCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts
}

func testSpec() labels.Spec {
	return labels.Spec{
		Hosts: []string{"app.localhost"}, Scheme: "http", IdleTimeout: time.Hour,
		StopMethod: labels.StopMethodStop, StopTimeout: time.Second, WakeTimeout: 5 * time.Second,
		LoadingPage: true,
	}
}

func newTestWatcher(t *testing.T, f *fakeRuntime, name string, spec labels.Spec) *watcher.Watcher {
	t.Helper()
	w := watcher.New(watcher.Config{Name: name, Spec: spec, Runtime: f, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(w.Close)
	f.mu.Lock()
	f.onDie = w.Observe
	c := f.c
	f.mu.Unlock()
	w.Observe(c)
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
