package watcher

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

func TestReadinessFor(t *testing.T) {
	t.Parallel()
	urlTest := &HealthCheck{Test: []string{"CMD", "curl", "-f", "http://localhost:8080/health"}}
	script := &HealthCheck{Test: []string{"CMD", "/healthcheck.sh"}}
	other := &HealthCheck{Test: []string{"CMD", "curl", "-f", "http://db.example.com/"}}
	own := &HealthCheck{Test: []string{"CMD", "curl", "-f", "http://10.1.2.3:8080/"}}
	shell := &HealthCheck{Test: []string{"CMD-SHELL", `curl -Lk "${URL}" || exit 1`}, Env: []string{"URL=http://127.0.0.1:8096/health"}}
	tests := []struct {
		name    string
		check   *HealthCheck
		mutate  func(s *labels.Spec)
		canExec bool
		want    string
	}{
		{"url test", urlTest, nil, false, "healthcheck-url http://localhost:8080/health"},
		{"shell test with $VAR", shell, nil, false, "healthcheck-url http://127.0.0.1:8096/health"},
		{"own address", own, nil, false, "healthcheck-url http://10.1.2.3:8080/"},
		{"ready_path wins", urlTest, func(s *labels.Spec) { s.ReadyPath = "/alive" }, true, "http /alive"},
		{"script with opt-in", script, func(s *labels.Spec) { s.HealthExec = true }, true, "healthcheck-exec"},
		{"script with opt-in, no exec", script, func(s *labels.Spec) { s.HealthExec = true }, false, "healthcheck-event"},
		{"script without opt-in", script, nil, true, "healthcheck-event"},
		{"another host's URL", other, nil, true, "healthcheck-event"},
		{"no check, http", nil, nil, true, "http"},
		{"no check, tcp", nil, func(s *labels.Spec) { s.Hosts = nil }, true, "tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := testSpec()
			if tt.mutate != nil {
				tt.mutate(&spec)
			}
			c := Container{Name: "app", Check: tt.check,
				Networks: []Network{{Name: "n", IP: netip.MustParseAddr("10.1.2.3")}}}
			if tt.check != nil {
				c.Health = HealthStarting
			}
			if got := readinessFor(c, &spec, tt.canExec).String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// healthApp is an app whose / answers at once but whose /health fails until
// healthy is set; Host must be allowed when allowHost is set.
type healthApp struct {
	srv       *httptest.Server
	healthy   atomic.Bool
	allowHost string
	hosts     atomic.Value // last Host seen
}

func newHealthApp(t *testing.T, allowHost string) *healthApp {
	a := &healthApp{allowHost: allowHost}
	a.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		a.hosts.Store(r.Host)
		if a.allowHost != "" && r.Host != a.allowHost {
			http.Error(rw, "bad host", http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/health" && !a.healthy.Load() {
			http.Error(rw, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = rw.Write([]byte("ok"))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *healthApp) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// waitAsync runs w.Wait in the background and returns its result channel.
func waitAsync(w *Watcher) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := w.Wait(context.Background())
		done <- err
	}()
	return done
}

// TestHealthURLIsFollowedAtSleepersPace: a health test that fetches a URL
// makes the container ready as soon as that URL passes, although the engine
// still says "starting" (its first probe is an interval away), and not
// while it fails, however the app answers other paths.
func TestHealthURLIsFollowedAtSleepersPace(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	app := newHealthApp(t, "")
	f.c.Published = map[string]string{"8080/tcp": app.addr(), "80/tcp": app.addr()}
	f.c.Health = HealthStarting
	f.c.Check = &HealthCheck{Test: []string{"CMD-SHELL", "curl -fsS http://localhost:8080/health || exit 1"}, Interval: 30 * time.Second}
	w := newTestWatcher(t, f, testSpec())
	done := waitAsync(w)
	select {
	case err := <-done:
		t.Fatalf("ready while the health test fails: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	app.healthy.Store(true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("not ready after the health URL passed (waiting for the engine's event?)")
	}
	if h, _ := app.hosts.Load().(string); h != "localhost:8080" {
		t.Fatalf("health probe sent Host %q, want the test's own localhost:8080", h)
	}
	if got := w.Info().Readiness; got != "healthcheck-url http://localhost:8080/health" {
		t.Fatalf("readiness %q", got)
	}
}

// execFake adds the engine's exec API to the fake runtime.
type execFake struct {
	*fakeRuntime
	code  atomic.Int32
	execs atomic.Int32
}

func (e *execFake) Exec(_ context.Context, id string, cmd []string) (int, error) {
	e.execs.Add(1)
	if id != "c1" || len(cmd) != 1 || cmd[0] != "/healthcheck.sh" {
		return -1, errors.New("unexpected exec")
	}
	return int(e.code.Load()), nil
}

// TestHealthExecOptIn: a test that names no URL runs through exec only with
// sleeper.health_exec; without it the wake waits for the engine's event.
func TestHealthExecOptIn(t *testing.T) {
	t.Parallel()
	for _, optIn := range []bool{true, false} {
		f := newFake(t)
		f.c.Health = HealthStarting
		f.c.Check = &HealthCheck{Test: []string{"CMD", "/healthcheck.sh"}}
		e := &execFake{fakeRuntime: f}
		e.code.Store(1)
		spec := testSpec()
		spec.HealthExec = optIn
		w := New(Config{Name: "app", Spec: spec, Runtime: e, Log: slog.New(slog.DiscardHandler)})
		t.Cleanup(w.Close)
		w.Observe(f.c)
		done := waitAsync(w)
		if optIn {
			await.Eventually(t, 3*time.Second, "failing execs", func() bool { return e.execs.Load() >= 2 })
			select {
			case err := <-done:
				t.Fatalf("ready (%v) while the test fails", err)
			default:
			}
			e.code.Store(0)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("with the opt-in, not ready after the test passed through exec")
			}
			continue
		}
		e.code.Store(0)
		select {
		case err := <-done:
			t.Fatalf("without the opt-in, ready (%v) before the engine's event", err)
		case <-time.After(300 * time.Millisecond):
		}
		if n := e.execs.Load(); n != 0 {
			t.Fatalf("without the opt-in, %d execs", n)
		}
		c, _ := f.Inspect(context.Background(), "c1")
		c.Health = HealthHealthy
		w.Observe(c)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEngineUnhealthyFailsTheWake: the engine's "unhealthy" for this run
// fails the wake rather than leave clients waiting for the timeout.
func TestEngineUnhealthyFailsTheWake(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.c.Health = HealthStarting
	f.c.Check = &HealthCheck{Test: []string{"CMD", "/healthcheck.sh"}}
	w := newTestWatcher(t, f, testSpec())
	done := waitAsync(w)
	await.Eventually(t, 2*time.Second, "the start", func() bool { return f.count("start") == 1 })
	await.Eventually(t, 2*time.Second, "running observed", func() bool { return w.Observed().Status == StatusRunning })
	c, _ := f.Inspect(context.Background(), "c1")
	c.Health = HealthUnhealthy
	w.Observe(c)
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnhealthy) {
			t.Fatalf("got %v, want ErrUnhealthy", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("an unhealthy container kept its clients waiting")
	}
}

// TestReadyPathSendsHostName: the ready_path probe sends the container's
// first host name, so an app with an allowed-hosts list answers 200, not 400.
func TestReadyPathSendsHostName(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	app := newHealthApp(t, "app.localhost")
	app.healthy.Store(true)
	f.c.Published = map[string]string{"80/tcp": app.addr()}
	spec := testSpec()
	spec.Hosts = []string{"*.wild.localhost", "app.localhost"}
	spec.ReadyPath = "/health"
	w := newTestWatcher(t, f, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := w.Wait(ctx); err != nil {
		t.Fatalf("wake with an allowed-hosts app: %v (last Host %v)", err, app.hosts.Load())
	}
	u, _ := url.Parse("http://10.0.0.5:8080")
	spec.Upstream = u
	if got := probeHost(&spec); got != "10.0.0.5:8080" {
		t.Fatalf("with an upstream, Host %q", got)
	}
}

// TestHealthWaitReinspects: an engine that sends no health event (Podman
// with its health timers off, or a lost event) must not keep a wake waiting
// for the relist: the wait inspects on its own and sees "healthy".
func TestHealthWaitReinspects(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.c.Health = HealthStarting
	f.c.Check = &HealthCheck{Test: []string{"CMD", "/healthcheck.sh"}}
	w := newTestWatcher(t, f, testSpec())
	done := waitAsync(w)
	await.Eventually(t, 2*time.Second, "the start", func() bool { return f.count("start") == 1 })
	select {
	case err := <-done:
		t.Fatalf("ready (%v) while the engine says starting", err)
	case <-time.After(300 * time.Millisecond):
	}
	f.mu.Lock()
	f.c.Health = HealthHealthy // what inspect shows; no event, no Observe
	f.mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("inspect says healthy but the wake still waits for an event")
	}
}
