package watcher_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// twoEngines runs one registry fed by two engines, "a" and "b", each with
// its own reconciler and health, until the test ends.
func twoEngines(t *testing.T, ea, eb *watchertest.Engine) (*watcher.Registry, map[string]*watcher.EngineHealth) {
	t.Helper()
	reg, health, _ := twoEnginesWith(t, ea, eb, nil)
	return reg, health
}

// twoEnginesWith is twoEngines with stubs for the workloads of targets,
// and returns the reconcilers, engine a's first.
func twoEnginesWith(t *testing.T, ea, eb *watchertest.Engine, targets watcher.Targets) (*watcher.Registry, map[string]*watcher.EngineHealth, []*watcher.Reconciler) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	health := map[string]*watcher.EngineHealth{
		"a": watcher.NewEngineHealth(watcher.EngineHealthConfig{Engine: "engine a"}),
		"b": watcher.NewEngineHealth(watcher.EngineHealthConfig{Engine: "engine b"}),
	}
	reg := watcher.NewRegistry(watcher.RegistryConfig{Log: log, Targets: targets,
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour},
		Engines: map[string]watcher.Engine{
			"a": {Runtime: ea, Finder: ea, Provider: "docker", Health: health["a"]},
			"b": {Runtime: eb, Finder: eb, Provider: "docker", Health: health["b"]},
		}})
	t.Cleanup(reg.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	var rcs []*watcher.Reconciler
	for _, name := range []string{"a", "b"} {
		e := map[string]*watchertest.Engine{"a": ea, "b": eb}[name]
		rc := watcher.NewReconciler(watcher.ReconcilerConfig{Source: e, Registry: reg, Log: log,
			Prefix: "sleeper", EngineName: name, Health: health[name]})
		rcs = append(rcs, rc)
		go func() { _ = rc.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })
	return reg, health, rcs
}

// TestSeveralEnginesKeepTheirContainersApart: two engines each with a
// container named "web" give two containers, "a/web" and "b/web", each
// driven by its own engine; one removed from engine b leaves a/web alone.
func TestSeveralEnginesKeepTheirContainersApart(t *testing.T) {
	t.Parallel()
	webA := labelled("web")
	webB := labelled("web")
	webB.Labels["sleeper.hosts"] = "web-b.localhost"
	ea, eb := watchertest.NewEngine(webA), watchertest.NewEngine(webB)
	watchertest.NewApp(t, ea, "web")
	watchertest.NewApp(t, eb, "web")
	reg, _ := twoEngines(t, ea, eb)
	await.Eventually(t, 5*time.Second, "both listed", hasNames(reg, "a/web", "b/web"))
	w := reg.Get("b/web")
	if w == nil {
		t.Fatal("b/web not managed")
	}
	if _, err := w.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ea.Calls("start", "web") != 0 || eb.Calls("start", "web") != 1 {
		t.Fatalf("starts: engine a %d, engine b %d; want 0 and 1", ea.Calls("start", "web"), eb.Calls("start", "web"))
	}
	eb.Delete("web")
	eb.Emit("web")
	await.Eventually(t, 5*time.Second, "b/web forgotten", hasNames(reg, "a/web"))
}

// TestSeveralEnginesRouteConflict: routes are global, so two engines
// claiming one host is a conflict, the older container keeping it.
func TestSeveralEnginesRouteConflict(t *testing.T) {
	t.Parallel()
	older := labelled("web")
	older.Created = time.Now().Add(-time.Hour)
	ea, eb := watchertest.NewEngine(labelled("web")), watchertest.NewEngine(older)
	reg, _ := twoEngines(t, ea, eb)
	await.Eventually(t, 5*time.Second, "both listed", hasNames(reg, "a/web", "b/web"))
	await.Eventually(t, 5*time.Second, "b/web owns the host", func() bool {
		w := reg.Routes().Lookup("web.localhost")
		return w != nil && w.Name() == "b/web"
	})
	for _, info := range reg.List() {
		if info.Name == "a/web" && !strings.Contains(info.Error, "already claimed by container b/web") {
			t.Fatalf("a/web error %q, want a route conflict naming b/web", info.Error)
		}
	}
}

// TestSeveralEnginesDependencies: "engine:name" names a dependency on
// another engine; a plain name resolves on the dependent's own engine.
func TestSeveralEnginesDependencies(t *testing.T) {
	t.Parallel()
	app := labelled("app", "depends_on", "b:db,cache")
	ea := watchertest.NewEngine(app, labelled("cache"))
	ea.Set(watcher.Container{ID: "db-a-id", Name: "db", Status: watcher.StatusStopped}) // same name, wrong engine
	eb := watchertest.NewEngine(watcher.Container{ID: "db-b-id", Name: "db", Status: watcher.StatusStopped})
	watchertest.NewApp(t, ea, "app")
	watchertest.NewApp(t, ea, "cache")
	reg, _ := twoEngines(t, ea, eb)
	await.Eventually(t, 5*time.Second, "listed", hasNames(reg, "a/app", "a/cache"))
	if _, err := reg.Get("a/app").Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eb.Calls("start", "db") != 1 || ea.Calls("start", "db") != 0 {
		t.Fatalf("db starts: engine b %d, engine a %d; want 1 and 0", eb.Calls("start", "db"), ea.Calls("start", "db"))
	}
	if !reg.Get("a/cache").Awake() {
		t.Fatal("a/cache, a plain dependency on the same engine, is not awake")
	}
}

// TestSeveralEnginesOneDown: while engine b does not answer, its containers
// say so in the API and their wakes fail at once naming the engine; engine
// a's keep working.
func TestSeveralEnginesOneDown(t *testing.T) {
	t.Parallel()
	webB := labelled("web")
	webB.Labels["sleeper.hosts"] = "web-b.localhost"
	ea, eb := watchertest.NewEngine(labelled("web")), watchertest.NewEngine(webB)
	watchertest.NewApp(t, ea, "web")
	watchertest.NewApp(t, eb, "web")
	reg, health := twoEngines(t, ea, eb)
	await.Eventually(t, 5*time.Second, "both listed", hasNames(reg, "a/web", "b/web"))
	down := errors.New("connection refused")
	eb.FailLists(down, down, down, down, down, down, down, down, down, down, down, down, down, down, down, down)
	eb.Break(down)
	await.Eventually(t, 5*time.Second, "engine b down", func() bool { return !health["b"].Up() })
	_, err := reg.Get("b/web").Wait(t.Context())
	var ee *watcher.EngineError
	if !errors.As(err, &ee) || ee.Engine != "b" {
		t.Fatalf("wake on a down engine: %v; want an EngineError naming b", err)
	}
	if eb.Calls("start", "web") != 0 {
		t.Fatal("a wake was sent to the engine that is down")
	}
	for _, info := range reg.List() {
		if info.Name == "b/web" && !strings.Contains(info.Error, "engine b unreachable") {
			t.Fatalf("b/web error %q, want the engine unreachable", info.Error)
		}
	}
	if _, err := reg.Get("a/web").Wait(t.Context()); err != nil {
		t.Fatalf("engine a's container: %v", err)
	}
}

// TestSeveralEnginesUnknownEngine: a container stamped with an engine the
// registry does not know is a config error, not a crash.
func TestSeveralEnginesUnknownEngine(t *testing.T) {
	t.Parallel()
	reg := watcher.NewRegistry(watcher.RegistryConfig{Log: slog.New(slog.DiscardHandler),
		Labels: labels.Options{Prefix: "sleeper"}})
	t.Cleanup(reg.Close)
	c := labelled("web")
	c.Engine = "nas"
	reg.Apply(c)
	if l := reg.List(); len(l) != 1 || l[0].Name != "nas/web" || !strings.Contains(l[0].Error, `engine "nas" is not configured`) {
		t.Fatalf("list %+v", l)
	}
}
