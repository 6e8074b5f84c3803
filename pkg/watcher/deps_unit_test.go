package watcher_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// stack is a registry over the kit's engine: managed containers (labelled,
// each with an app behind it) and unmanaged ones (no labels) side by side.
type stack struct {
	e   *watchertest.Engine
	reg *watcher.Registry
}

func newStack(t *testing.T, cs ...watcher.Container) *stack {
	t.Helper()
	e := watchertest.NewEngine(cs...)
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: e, Finder: e, Log: slog.New(slog.DiscardHandler),
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	var managed []watcher.Container
	for _, c := range cs {
		if c.Labels["sleeper.enable"] == "true" {
			watchertest.NewApp(t, e, c.Name)
			managed = append(managed, e.Container(c.Name))
		}
	}
	reg.ApplyAll(managed)
	return &stack{e: e, reg: reg}
}

// unmanaged is a stopped container sleeper does not manage.
func unmanaged(name string) watcher.Container {
	return watcher.Container{ID: name + "-id", Name: name, Status: watcher.StatusStopped, Created: time.Now()}
}

func (s *stack) get(t *testing.T, name string) *watcher.Watcher {
	t.Helper()
	w := s.reg.Get(name)
	if w == nil {
		t.Fatalf("%s is not managed; registry: %+v", name, s.reg.List())
	}
	return w
}

func (s *stack) wait(t *testing.T, name string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := s.get(t, name).Wait(ctx)
	return err
}

func (s *stack) status(name string) watcher.Status { return s.e.Container(name).Status }

func eventTypes(w *watcher.Watcher) []watcher.EventType {
	evs, _ := w.Progress()
	var out []watcher.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// TestDependencyIsReadyBeforeItsDependentStarts: a managed dependency wakes
// first; the dependent is not started while it is held, and the wake's
// progress reports the dependency's steps before the dependent's start.
func TestDependencyIsReadyBeforeItsDependentStarts(t *testing.T) {
	t.Parallel()
	s := newStack(t, labelled("web", "depends_on", "db"), labelled("db"))
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // before the registry closes, should the test fail
	s.e.Behave("db", watchertest.Behaviour{Gate: gate})
	web := s.get(t, "web")
	done := make(chan error, 1)
	go func() { done <- s.wait(t, "web") }()
	await.Eventually(t, 5*time.Second, "db's start", func() bool { return s.e.Calls("start", "db") == 1 })
	if n := s.e.Calls("start", "web"); n != 0 {
		t.Fatalf("web started %d times while its dependency was starting", n)
	}
	if !s.reg.Get("db").Awake() || !s.reg.DependentsAwake("db") {
		t.Fatal("db waking for an awake dependent is not reported awake")
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []watcher.EventType{watcher.EventWaking, watcher.EventDependencyWaking, watcher.EventDependencyReady,
		watcher.EventStarted, watcher.EventWaitingReady, watcher.EventReady}
	if got := eventTypes(web); !slicesEqual(got, want) {
		t.Fatalf("progress %v, want %v", got, want)
	}
	if s.reg.Get("db").State() != watcher.StateReady {
		t.Fatalf("db %v after web woke, want ready", s.reg.Get("db").State())
	}
}

func slicesContain[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestManagedDependencySleepsAfterItsDependents: a managed dependency whose
// idle time has passed stays up while a dependent is awake, and follows it
// to sleep once the dependent sleeps.
func TestManagedDependencySleepsAfterItsDependents(t *testing.T) {
	t.Parallel()
	s := newStack(t, labelled("web", "depends_on", "db"), labelled("db", "idle_timeout", "1s"))
	if err := s.wait(t, "web"); err != nil {
		t.Fatal(err)
	}
	db := s.get(t, "db")
	if !s.reg.DependentsAwake("db") || s.reg.DependentsAwake("web") {
		t.Fatal("DependentsAwake: want true for db (web is awake), false for web (nothing depends on it)")
	}
	// Past db's idle time (and its timer), db is still up: web needs it.
	until := time.Until(db.LastActivity().Add(1500 * time.Millisecond))
	await.HoldsFor(t, until, "db up while web is awake", func() bool { return db.State() == watcher.StateReady })
	if err := s.get(t, "web").Sleep(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 5*time.Second, "db asleep after web", func() bool { return db.State() == watcher.StateAsleep })
	if s.status("db") != watcher.StatusStopped {
		t.Fatalf("db is %s, want stopped", s.status("db"))
	}
}

// TestUnmanagedDependencyIsSharedAndCounted: two dependents waking at once
// start an unmanaged dependency once; it stops only after the last of them
// sleeps, and one that was already running is never stopped.
func TestUnmanagedDependencyIsSharedAndCounted(t *testing.T) {
	t.Parallel()
	cache := unmanaged("cache")
	cache.Status = watcher.StatusRunning
	s := newStack(t, labelled("a", "depends_on", "db,cache"), labelled("b", "depends_on", "db"), unmanaged("db"), cache)
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // before the registry closes, should the test fail
	s.e.Behave("db", watchertest.Behaviour{Gate: gate})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b"} {
		w := s.get(t, n)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := w.Wait(ctx)
			errs <- err
		})
	}
	await.Eventually(t, 5*time.Second, "db's start", func() bool { return s.e.Calls("start", "db") >= 1 })
	await.Eventually(t, 5*time.Second, "both dependents waking db", func() bool {
		return slicesContain(eventTypes(s.get(t, "a")), watcher.EventDependencyWaking) &&
			slicesContain(eventTypes(s.get(t, "b")), watcher.EventDependencyWaking)
	})
	// While the first start is held, the other dependent joins it.
	await.HoldsFor(t, 200*time.Millisecond, "one start of db", func() bool { return s.e.Calls("start", "db") == 1 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.e.Calls("start", "db"); n != 1 {
		t.Fatalf("db started %d times for two dependents, want 1", n)
	}
	if n := s.e.Calls("start", "cache"); n != 0 {
		t.Fatalf("the running cache was started %d times", n)
	}
	if err := s.get(t, "a").Sleep(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	await.HoldsFor(t, 300*time.Millisecond, "db running while b uses it", func() bool { return s.status("db") == watcher.StatusRunning })
	if err := s.get(t, "b").Sleep(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 5*time.Second, "db stopped after its last dependent", func() bool { return s.status("db") == watcher.StatusStopped })
	await.HoldsFor(t, 200*time.Millisecond, "cache, running before, left alone", func() bool { return s.e.Calls("stop", "cache") == 0 })
	// Woken again, the dependency is started again and counted afresh.
	if err := s.wait(t, "b"); err != nil {
		t.Fatal(err)
	}
	if n := s.e.Calls("start", "db"); n != 2 || s.status("db") != watcher.StatusRunning {
		t.Fatalf("db: %d starts, %s; want 2 and running", n, s.status("db"))
	}
}

// TestUnmanagedDependencyStates: a paused dependency is unpaused, not
// started; one that dies on start or that the engine refuses fails the
// dependent's wake with a DependencyError naming it, and what the wake had
// started already is stopped again (failure half-way).
func TestUnmanagedDependencyStates(t *testing.T) {
	t.Parallel()
	t.Run("paused", func(t *testing.T) {
		t.Parallel()
		db := unmanaged("db")
		db.Status = watcher.StatusPaused
		s := newStack(t, labelled("web", "depends_on", "db"), db)
		if err := s.wait(t, "web"); err != nil {
			t.Fatal(err)
		}
		if s.e.Calls("unpause", "db") != 1 || s.e.Calls("start", "db") != 0 {
			t.Fatalf("paused db: %d unpauses, %d starts; want 1 and 0", s.e.Calls("unpause", "db"), s.e.Calls("start", "db"))
		}
	})
	for _, tc := range []struct {
		name string
		b    watchertest.Behaviour
		is   func(error) bool
	}{
		{"refused", watchertest.Behaviour{StartErr: errTest}, func(err error) bool { return errors.Is(err, errTest) }},
		{"dies on start", watchertest.Behaviour{ExitOnStart: true}, func(err error) bool {
			var ee *watcher.ExitError
			return errors.As(err, &ee) && ee.Code == 3
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, labelled("web", "depends_on", "db,cache"), unmanaged("db"), unmanaged("cache"))
			s.e.Behave("cache", tc.b)
			err := s.wait(t, "web")
			var de *watcher.DependencyError
			if !errors.As(err, &de) || de.Name != "cache" || !tc.is(err) {
				t.Fatalf("wake: %v, want a DependencyError for cache with its cause", err)
			}
			if s.e.Calls("start", "web") != 0 {
				t.Fatal("web started although a dependency failed")
			}
			await.Eventually(t, 5*time.Second, "db, started for the failed wake, stopped",
				func() bool { return s.e.Calls("start", "db") == 1 && s.status("db") == watcher.StatusStopped })
		})
	}
}

// TestHealthyDependencies: ":healthy" waits for the health check: an
// unmanaged dependency until the engine says healthy or its health URL
// answers (followed by sleeper itself), a managed one whose readiness is
// its ready_path by its health URL; without a health check it fails.
func TestHealthyDependencies(t *testing.T) {
	t.Parallel()
	check := &watcher.HealthCheck{Test: []string{"CMD", "curl", "-f", "http://localhost/"}}
	t.Run("unmanaged without check", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, labelled("web", "depends_on", "db:healthy"), unmanaged("db"))
		if err := s.wait(t, "web"); !errors.Is(err, watcher.ErrNoHealthCheck) {
			t.Fatalf("wake: %v, want ErrNoHealthCheck", err)
		}
	})
	t.Run("managed without check", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, labelled("web", "depends_on", "db:healthy"), labelled("db"))
		if err := s.wait(t, "web"); !errors.Is(err, watcher.ErrNoHealthCheck) {
			t.Fatalf("wake: %v, want ErrNoHealthCheck", err)
		}
	})
	t.Run("unmanaged healthy by the engine", func(t *testing.T) {
		t.Parallel()
		db := unmanaged("db")
		db.Health = watcher.HealthStarting
		s := newStack(t, labelled("web", "depends_on", "db:healthy"), db)
		done := make(chan error, 1)
		go func() { done <- s.wait(t, "web") }()
		await.Eventually(t, 5*time.Second, "db running", func() bool { return s.status("db") == watcher.StatusRunning })
		select {
		case err := <-done:
			t.Fatalf("web woke (%v) before db was healthy", err)
		default:
		}
		s.e.Update("db", func(c *watcher.Container) { c.Health = watcher.HealthHealthy })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unmanaged health URL", func(t *testing.T) {
		t.Parallel()
		db := unmanaged("db")
		db.Health, db.Check = watcher.HealthStarting, check
		s := newStack(t, labelled("web", "depends_on", "db:healthy"), db)
		app := watchertest.NewApp(t, s.e, "db")
		app.SetUp(false)
		done := make(chan error, 1)
		go func() { done <- s.wait(t, "web") }()
		await.Eventually(t, 5*time.Second, "db running", func() bool { return s.status("db") == watcher.StatusRunning })
		await.HoldsFor(t, 100*time.Millisecond, "web waiting while db's health URL fails", func() bool { return len(done) == 0 })
		app.SetUp(true) // the engine still says starting
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("managed health URL", func(t *testing.T) {
		t.Parallel()
		db := labelled("db", "ready_path", "/")
		db.Health, db.Check = watcher.HealthStarting, check
		s := newStack(t, labelled("web", "depends_on", "db:healthy"), db)
		if err := s.wait(t, "web"); err != nil {
			t.Fatal(err)
		}
		if got := s.e.Container("db").Health; got != watcher.HealthStarting {
			t.Fatalf("db health %q: the test needs the engine to still say starting", got)
		}
	})
}

// TestDependencyResolution: depends_on finds a compose service of the
// dependent's project (the older of two managed candidates, as during a
// recreate), or "project/service"; a name that is nowhere, or a labelled
// container that is not managed, fails the wake with its reason; a cycle
// leaves every container in it unmanaged with the cycle as its error.
func TestDependencyResolution(t *testing.T) {
	t.Parallel()
	compose := func(c watcher.Container, project, service string) watcher.Container {
		c.Labels = maps.Clone(c.Labels)
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels["com.docker.compose.project"], c.Labels["com.docker.compose.service"] = project, service
		return c
	}
	t.Run("compose service, older first", func(t *testing.T) {
		t.Parallel()
		older := compose(labelled("p-db-1"), "p", "db")
		younger := compose(labelled("p-db-2"), "p", "db")
		younger.Created = older.Created.Add(time.Second)
		s := newStack(t, compose(labelled("web", "depends_on", "db"), "p", "web"), younger, older)
		if err := s.wait(t, "web"); err != nil {
			t.Fatal(err)
		}
		if s.e.Calls("start", "p-db-1") != 1 || s.e.Calls("start", "p-db-2") != 0 {
			t.Fatalf("starts: older %d, younger %d; want 1 and 0", s.e.Calls("start", "p-db-1"), s.e.Calls("start", "p-db-2"))
		}
	})
	t.Run("qualified unmanaged service", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, labelled("web", "depends_on", "q/db"), compose(unmanaged("q-db-1"), "q", "db"))
		if err := s.wait(t, "web"); err != nil {
			t.Fatal(err)
		}
		if s.e.Calls("start", "q-db-1") != 1 {
			t.Fatal("the qualified compose service was not started")
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		for _, dep := range []string{"nowhere", "q/nowhere"} {
			s := newStack(t, labelled("web", "depends_on", dep))
			if err := s.wait(t, "web"); !errors.Is(err, watcher.ErrDependencyNotFound) {
				t.Fatalf("depends_on %s: %v, want ErrDependencyNotFound", dep, err)
			}
		}
	})
	t.Run("not managed", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, labelled("web", "depends_on", "bad"), labelled("bad", "idle_timeout", "soon"))
		if err := s.wait(t, "web"); err == nil || !strings.Contains(err.Error(), "bad is not managed") {
			t.Fatalf("wake: %v, want bad is not managed", err)
		}
	})
	t.Run("cycle", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, labelled("a", "depends_on", "b"), labelled("b", "depends_on", "c"),
			labelled("c", "depends_on", "a"), labelled("d", "depends_on", "a"))
		for _, i := range s.reg.List() {
			inCycle := i.Name != "d"
			if inCycle && (!strings.Contains(i.Error, "dependency cycle") || s.reg.Get(i.Name) != nil) {
				t.Errorf("%s: error %q, managed %v; want unmanaged with the cycle", i.Name, i.Error, s.reg.Get(i.Name) != nil)
			}
		}
		if err := s.wait(t, "d"); err == nil || !strings.Contains(err.Error(), "dependency cycle") {
			t.Fatalf("waking d, which depends on the cycle: %v, want the cycle", err)
		}
		// Breaking the cycle makes them managed again.
		c := s.e.Container("c")
		c.Labels = maps.Clone(c.Labels)
		delete(c.Labels, "sleeper.depends_on")
		s.reg.Apply(c)
		for _, n := range []string{"a", "b", "c"} {
			if s.reg.Get(n) == nil {
				t.Errorf("%s still unmanaged after the cycle was broken", n)
			}
		}
	})
}
