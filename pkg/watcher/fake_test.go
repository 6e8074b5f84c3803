package watcher

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// fakeRuntime is an in-memory engine with one container. Starting it makes
// the app answer (through an httptest server) after appDelay, unless
// exitOnStart is set, in which case the container dies right after starting.
type fakeRuntime struct {
	Runtime // unimplemented methods panic

	t   *testing.T
	app *httptest.Server

	mu          sync.Mutex
	c           Container
	appUp       bool
	appDelay    time.Duration
	exitOnStart bool
	startErr    error
	stopErr     error
	calls       map[string]int
	onDie       func(Container) // tells the watcher, as the reconciler would
}

func newFake(t *testing.T) *fakeRuntime {
	f := &fakeRuntime{t: t, calls: map[string]int{}}
	f.app = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		up := f.appUp
		f.mu.Unlock()
		if !up {
			// What docker-proxy does when nothing listens: accept, then hang up.
			hj, _ := rw.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
			return
		}
		_, _ = io.WriteString(rw, "ok")
	}))
	t.Cleanup(f.app.Close)
	f.c = Container{
		ID: "c1", Name: "app", Status: StatusStopped, Created: time.Now(),
		Published: map[string]string{"80/tcp": strings.TrimPrefix(f.app.URL, "http://")},
	}
	return f
}

func (f *fakeRuntime) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeRuntime) Inspect(_ context.Context, ref string) (Container, error) {
	began := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["inspect"]++
	if ref != f.c.ID && ref != f.c.Name && ref != "" {
		return Container{}, ErrNotFound
	}
	c := f.c
	c.InspectedAt = began
	return c, nil
}

func (f *fakeRuntime) Start(context.Context, string) error {
	f.mu.Lock()
	f.calls["start"]++
	if f.startErr != nil {
		f.mu.Unlock()
		return f.startErr
	}
	f.c.Status = StatusRunning
	f.c.StartedAt = time.Now()
	if f.exitOnStart {
		died := f.c
		died.Status, died.ExitCode, died.FinishedAt = StatusStopped, 3, time.Now()
		f.c = died
		cb := f.onDie
		f.mu.Unlock()
		if cb != nil {
			time.AfterFunc(20*time.Millisecond, func() { cb(died) })
		}
		return nil
	}
	delay := f.appDelay
	f.mu.Unlock()
	time.AfterFunc(delay, func() {
		f.mu.Lock()
		f.appUp = f.c.Status == StatusRunning
		f.mu.Unlock()
	})
	return nil
}

func (f *fakeRuntime) stopped(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	f.c.Status = StatusStopped
	f.c.FinishedAt = time.Now()
	f.appUp = false
	return nil
}

func (f *fakeRuntime) Stop(context.Context, string, StopOptions) error {
	f.mu.Lock()
	err := f.stopErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.stopped("stop")
}

func (f *fakeRuntime) Kill(context.Context, string, string) error { return f.stopped("kill") }

func (f *fakeRuntime) Pause(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["pause"]++
	f.c.Status = StatusPaused
	return nil
}

func (f *fakeRuntime) Unpause(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["unpause"]++
	f.c.Status = StatusRunning
	return nil
}

func testSpec() labels.Spec {
	return labels.Spec{
		Hosts: []string{"app.localhost"}, Scheme: "http", IdleTimeout: time.Hour,
		StopMethod: labels.StopMethodStop, StopTimeout: time.Second, WakeTimeout: 5 * time.Second,
		LoadingPage: true,
	}
}

func newTestWatcher(t *testing.T, f *fakeRuntime, spec labels.Spec) *Watcher {
	w := New(Config{Name: "app", Spec: spec, Runtime: f, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(w.Close)
	f.mu.Lock()
	f.onDie = w.Observe
	c := f.c
	f.mu.Unlock()
	w.Observe(c)
	return w
}

func upstreamURL(t *testing.T, w *Watcher) *url.URL {
	t.Helper()
	u := w.Upstream()
	if u == nil {
		t.Fatal("no upstream")
	}
	return u
}

var errBoom = errors.New("boom")
