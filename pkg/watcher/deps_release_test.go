package watcher_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/watcher"
)

// depStack is a registry over the kit's engine holding an unmanaged database
// "db" (ID dbID) and a managed "app" (no routes) that depends on whatever
// dependsOn says. The engine resolves ID prefixes as Docker's API does.
// Both report healthy as soon as they run, so readiness never waits.
type depStack struct {
	e   *watchertest.Engine
	reg *watcher.Registry
	app *watcher.Watcher
}

const (
	dbID  = "d0d0d0d0d0d0"
	appID = "a1a1a1a1a1a1"
)

func healthy(id, name string, lbl map[string]string) watcher.Container {
	return watcher.Container{ID: id, Name: name, Labels: lbl, Status: watcher.StatusStopped,
		Created: time.Now(), Health: watcher.HealthHealthy}
}

func newDepStack(t *testing.T, dependsOn string, extra map[string]string) *depStack {
	t.Helper()
	lbl := map[string]string{"sleeper.enable": "true", "sleeper.depends_on": dependsOn, "sleeper.idle_timeout": "1h"}
	maps.Copy(lbl, extra)
	e := watchertest.NewEngine(healthy(dbID, "db", nil), healthy(appID, "app", lbl))
	e.ResolveIDPrefixes()
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: e, Finder: e, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	reg.Apply(e.Container("app"))
	w := reg.Get("app")
	if w == nil {
		t.Fatal("app is not managed")
	}
	return &depStack{e: e, reg: reg, app: w}
}

func (s *depStack) wake(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.app.Wait(ctx)
	return err
}

func (s *depStack) status(name string) watcher.Status { return s.e.Container(name).Status }

// TestFailedWakeReleasesDependencies: a dependent whose own start fails,
// whose wake fails part-way (another dependency is missing), or that is
// removed releases the unmanaged dependency sleeper started for it.
func TestFailedWakeReleasesDependencies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		dependsOn string
		breakIt   func(t *testing.T, s *depStack)
	}{
		{name: "own start fails", dependsOn: "db", breakIt: func(t *testing.T, s *depStack) {
			s.e.Behave("app", watchertest.Behaviour{StartErr: errTest})
			if err := s.wake(t); !errors.Is(err, errTest) {
				t.Fatalf("wake: %v, want %v", err, errTest)
			}
		}},
		{name: "another dependency missing", dependsOn: "db,missing", breakIt: func(t *testing.T, s *depStack) {
			if err := s.wake(t); err == nil || !strings.Contains(err.Error(), "dependency missing not found") {
				t.Fatalf("wake: %v, want dependency missing not found", err)
			}
			if s.e.Calls("start", "db") != 1 {
				t.Fatalf("db started %d times, want 1 (the test needs it started)", s.e.Calls("start", "db"))
			}
		}},
		{name: "dependent removed", dependsOn: "db", breakIt: func(t *testing.T, s *depStack) {
			if err := s.wake(t); err != nil {
				t.Fatal(err)
			}
			s.e.Delete("app") // destroyed
			s.reg.Remove("app")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newDepStack(t, tc.dependsOn, nil)
			tc.breakIt(t, s)
			await.Eventually(t, 5*time.Second, "the dependency sleeper started to be stopped",
				func() bool { return s.status("db") == watcher.StatusStopped })
		})
	}
}

// TestFailedDependencyStopIsRetried: a stop of an unmanaged dependency that
// fails is tried again later instead of being forgotten.
func TestFailedDependencyStopIsRetried(t *testing.T) {
	t.Parallel()
	s := newDepStack(t, "db", nil)
	if err := s.wake(t); err != nil {
		t.Fatal(err)
	}
	s.e.Behave("db", watchertest.Behaviour{StopErr: errTest})
	if err := s.app.Sleep(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 5*time.Second, "the first stop of db, refused", func() bool { return s.e.Calls("stop", "db") == 1 })
	s.e.Behave("db", watchertest.Behaviour{}) // the engine accepts the next one
	await.Eventually(t, 10*time.Second, "the dependency to be stopped after its first stop failed",
		func() bool { return s.status("db") == watcher.StatusStopped })
	if n := s.e.Calls("stop", "db"); n != 2 {
		t.Fatalf("%d stops of db, want 2 (one failed, one retried)", n)
	}
}

// TestDependencyNeverMatchesIDPrefix: depends_on names a container or a
// compose service, never a container whose ID merely begins with it; an
// exact container name wins over a compose service of the same name.
func TestDependencyNeverMatchesIDPrefix(t *testing.T) {
	t.Parallel()
	const project, service = "com.docker.compose.project", "com.docker.compose.service"
	t.Run("id prefix", func(t *testing.T) {
		t.Parallel()
		s := newDepStack(t, dbID[:4], nil)
		if err := s.wake(t); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("wake: %v, want dependency not found", err)
		}
		if n := s.e.Calls("start", "db"); n != 0 {
			t.Fatalf("the container whose ID begins with the dependency was started %d times", n)
		}
	})
	t.Run("id prefix and compose service", func(t *testing.T) {
		t.Parallel()
		s := newDepStack(t, dbID[:4], map[string]string{project: "p"})
		svc := healthy("5e5e5e5e5e5e", "p-"+dbID[:4]+"-1", map[string]string{project: "p", service: dbID[:4]})
		s.e.Set(svc)
		if err := s.wake(t); err != nil {
			t.Fatalf("wake: %v, want the compose service", err)
		}
		if s.e.Calls("start", "db") != 0 || s.e.Calls("start", svc.Name) != 1 {
			t.Fatalf("starts: id-prefix container %d, service %d; want 0 and 1", s.e.Calls("start", "db"), s.e.Calls("start", svc.Name))
		}
	})
	t.Run("exact name beats compose service", func(t *testing.T) {
		t.Parallel()
		s := newDepStack(t, "db", map[string]string{project: "p"})
		svc := healthy("5e5e5e5e5e5e", "p-db-1", map[string]string{project: "p", service: "db"})
		s.e.Set(svc)
		if err := s.wake(t); err != nil {
			t.Fatal(err)
		}
		if s.e.Calls("start", "db") != 1 || s.e.Calls("start", svc.Name) != 0 {
			t.Fatalf("starts: named container %d, service %d; want 1 and 0", s.e.Calls("start", "db"), s.e.Calls("start", svc.Name))
		}
	})
}
