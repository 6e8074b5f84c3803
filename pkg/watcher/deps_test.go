package watcher

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// engineFake is an in-memory engine with many containers, for dependency
// tests. Its Inspect resolves references as the Docker engine does: full
// ID, exact name, then a unique ID prefix.
type engineFake struct {
	mu       sync.Mutex
	cs       map[string]*Container // by ID
	startErr map[string]error
	stopErrs map[string][]error // consumed one per Stop
	calls    map[string]int     // "start <id>", "stop <id>"
}

var (
	_ Runtime = (*engineFake)(nil)
	_ Finder  = (*engineFake)(nil)
)

func newEngineFake() *engineFake {
	return &engineFake{cs: map[string]*Container{}, startErr: map[string]error{},
		stopErrs: map[string][]error{}, calls: map[string]int{}}
}

// add creates a stopped container. Containers with a health check are
// healthy as soon as they run, so readiness never waits in these tests.
func (f *engineFake) add(id, name string, lbl map[string]string) Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &Container{ID: id, Name: name, Labels: lbl, Status: StatusStopped, Created: time.Now(), Health: HealthHealthy,
		Project: lbl[composeProject], Service: lbl[composeService]}
	f.cs[id] = c
	return *c
}

func (f *engineFake) count(op, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op+" "+id]
}

func (f *engineFake) status(id string) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cs[id].Status
}

func (f *engineFake) lookupLocked(ref string) (*Container, error) {
	if c, ok := f.cs[ref]; ok {
		return c, nil
	}
	for _, c := range f.cs {
		if c.Name == ref {
			return c, nil
		}
	}
	var found *Container
	for id, c := range f.cs {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errors.New("multiple IDs found with provided prefix")
			}
			found = c
		}
	}
	if found == nil {
		return nil, ErrNotFound
	}
	return found, nil
}

func (f *engineFake) Inspect(_ context.Context, ref string) (Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.lookupLocked(ref)
	if err != nil {
		return Container{}, err
	}
	out := *c
	out.InspectedAt = time.Now()
	return out, nil
}

func (f *engineFake) FindName(ctx context.Context, name string) (Container, error) {
	f.mu.Lock()
	var id string
	for _, c := range f.cs {
		if c.Name == name {
			id = c.ID
		}
	}
	f.mu.Unlock()
	if id == "" {
		return Container{}, ErrNotFound
	}
	return f.Inspect(ctx, id)
}

func (f *engineFake) FindService(ctx context.Context, project, service string) (Container, error) {
	f.mu.Lock()
	var id string
	for _, c := range f.cs {
		if c.Project == project && c.Service == service {
			id = c.ID
		}
	}
	f.mu.Unlock()
	if id == "" {
		return Container{}, ErrNotFound
	}
	return f.Inspect(ctx, id)
}

func (f *engineFake) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["start "+id]++
	if err := f.startErr[id]; err != nil {
		return err
	}
	c := f.cs[id]
	c.Status, c.StartedAt = StatusRunning, time.Now()
	return nil
}

func (f *engineFake) Stop(_ context.Context, id string, _ StopOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["stop "+id]++
	if errs := f.stopErrs[id]; len(errs) > 0 {
		f.stopErrs[id] = errs[1:]
		return errs[0]
	}
	c := f.cs[id]
	c.Status, c.FinishedAt = StatusStopped, time.Now()
	return nil
}

func (f *engineFake) Kill(ctx context.Context, id, _ string) error {
	return f.Stop(ctx, id, StopOptions{})
}

func (f *engineFake) Pause(context.Context, string) error   { return errors.New("not supported") }
func (f *engineFake) Unpause(context.Context, string) error { return errors.New("not supported") }

// depStack is a registry over an engineFake holding an unmanaged database
// "db" (ID dbID) and a managed "app" that depends on whatever dependsOn says.
type depStack struct {
	f   *engineFake
	reg *Registry
	app *Watcher
}

const (
	dbID  = "d0d0d0d0d0d0"
	appID = "a1a1a1a1a1a1"
)

func newDepStack(t *testing.T, dependsOn string, extra map[string]string) *depStack {
	t.Helper()
	f := newEngineFake()
	f.add(dbID, "db", nil)
	lbl := map[string]string{"sleeper.enable": "true", "sleeper.depends_on": dependsOn, "sleeper.idle_timeout": "1h"}
	maps.Copy(lbl, extra)
	app := f.add(appID, "app", lbl)
	reg := NewRegistry(RegistryConfig{Runtime: f, Finder: f, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	reg.Apply(app)
	w := reg.Get("app")
	if w == nil {
		t.Fatal("app is not managed")
	}
	return &depStack{f: f, reg: reg, app: w}
}

func (s *depStack) wake(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.app.Wait(ctx)
	return err
}

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
			s.f.mu.Lock()
			s.f.startErr[appID] = errBoom
			s.f.mu.Unlock()
			if err := s.wake(t); !errors.Is(err, errBoom) {
				t.Fatalf("wake: %v, want %v", err, errBoom)
			}
		}},
		{name: "another dependency missing", dependsOn: "db,missing", breakIt: func(t *testing.T, s *depStack) {
			if err := s.wake(t); err == nil || !strings.Contains(err.Error(), "dependency missing not found") {
				t.Fatalf("wake: %v, want dependency missing not found", err)
			}
			if s.f.count("start", dbID) != 1 {
				t.Fatalf("db started %d times, want 1 (the test needs it started)", s.f.count("start", dbID))
			}
		}},
		{name: "dependent removed", dependsOn: "db", breakIt: func(t *testing.T, s *depStack) {
			if err := s.wake(t); err != nil {
				t.Fatal(err)
			}
			s.f.mu.Lock()
			delete(s.f.cs, appID) // destroyed
			s.f.mu.Unlock()
			s.reg.Remove("app")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newDepStack(t, tc.dependsOn, nil)
			tc.breakIt(t, s)
			await.Eventually(t, 5*time.Second, "the dependency sleeper started to be stopped",
				func() bool { return s.f.status(dbID) == StatusStopped })
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
	s.f.mu.Lock()
	s.f.stopErrs[dbID] = []error{errBoom}
	s.f.mu.Unlock()
	if err := s.app.Sleep(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 10*time.Second, "the dependency to be stopped after its first stop failed",
		func() bool { return s.f.status(dbID) == StatusStopped })
	if n := s.f.count("stop", dbID); n != 2 {
		t.Fatalf("%d stops of db, want 2 (one failed, one retried)", n)
	}
}

// TestDependencyNeverMatchesIDPrefix: depends_on names a container or a
// compose service, never a container whose ID merely begins with it; an
// exact container name wins over a compose service of the same name.
func TestDependencyNeverMatchesIDPrefix(t *testing.T) {
	t.Parallel()
	t.Run("id prefix", func(t *testing.T) {
		t.Parallel()
		s := newDepStack(t, dbID[:4], nil)
		if err := s.wake(t); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("wake: %v, want dependency not found", err)
		}
		if n := s.f.count("start", dbID); n != 0 {
			t.Fatalf("the container whose ID begins with the dependency was started %d times", n)
		}
	})
	t.Run("id prefix and compose service", func(t *testing.T) {
		t.Parallel()
		compose := map[string]string{composeProject: "p"}
		s := newDepStack(t, dbID[:4], compose)
		svc := s.f.add("5e5e5e5e5e5e", "p-"+dbID[:4]+"-1", map[string]string{composeProject: "p", composeService: dbID[:4]})
		if err := s.wake(t); err != nil {
			t.Fatalf("wake: %v, want the compose service", err)
		}
		if s.f.count("start", dbID) != 0 || s.f.count("start", svc.ID) != 1 {
			t.Fatalf("starts: id-prefix container %d, service %d; want 0 and 1", s.f.count("start", dbID), s.f.count("start", svc.ID))
		}
	})
	t.Run("exact name beats compose service", func(t *testing.T) {
		t.Parallel()
		s := newDepStack(t, "db", map[string]string{composeProject: "p"})
		svc := s.f.add("5e5e5e5e5e5e", "p-db-1", map[string]string{composeProject: "p", composeService: "db"})
		if err := s.wake(t); err != nil {
			t.Fatal(err)
		}
		if s.f.count("start", dbID) != 1 || s.f.count("start", svc.ID) != 0 {
			t.Fatalf("starts: named container %d, service %d; want 1 and 0", s.f.count("start", dbID), s.f.count("start", svc.ID))
		}
	})
}

// The labels the Docker provider reads Project and Service from.
const (
	composeProject = "com.docker.compose.project"
	composeService = "com.docker.compose.service"
)
