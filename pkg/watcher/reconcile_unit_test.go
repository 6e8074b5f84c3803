package watcher_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

func labelled(name string, extra ...string) watcher.Container {
	l := map[string]string{"sleeper.enable": "true", "sleeper.hosts": name + ".localhost"}
	for i := 0; i+1 < len(extra); i += 2 {
		l["sleeper."+extra[i]] = extra[i+1]
	}
	return watcher.Container{ID: name + "-id", Name: name, Labels: l, Status: watcher.StatusStopped, Created: time.Now()}
}

// reconciler runs a reconciler over the kit's engine until the test ends.
func reconciler(t *testing.T, e *watchertest.Engine, cfg watcher.ReconcilerConfig) (*watcher.Registry, *watcher.Reconciler) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: e, Finder: e, Log: log,
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	cfg.Source, cfg.Registry, cfg.Log, cfg.Prefix = e, reg, log, "sleeper"
	rc := watcher.NewReconciler(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = rc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg, rc
}

func hasNames(reg *watcher.Registry, want ...string) func() bool {
	return func() bool { return slices.Equal(reg.Names(), want) }
}

// TestReconcileFollowsEvents: an event only names a container; the
// reconciler inspects and converges: a new one is added, one whose label
// went is removed, a removed one is forgotten, a renamed one moves.
func TestReconcileFollowsEvents(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine(labelled("a"))
	reg, rc := reconciler(t, e, watcher.ReconcilerConfig{Workers: 2})
	select {
	case <-rc.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("never synced")
	}
	await.Eventually(t, 5*time.Second, "a listed", hasNames(reg, "a"))
	e.Set(labelled("b"))
	e.Emit("b", "b", "b")
	await.Eventually(t, 5*time.Second, "b added by its event", hasNames(reg, "a", "b"))
	e.Update("b", func(c *watcher.Container) { c.Labels = map[string]string{} })
	e.Emit("b")
	await.Eventually(t, 5*time.Second, "b removed when its label went", hasNames(reg, "a"))
	e.Delete("a")
	e.Emit("a")
	await.Eventually(t, 5*time.Second, "a forgotten when gone", hasNames(reg))
	e.Set(labelled("c"))
	e.Emit("c")
	await.Eventually(t, 5*time.Second, "c added", hasNames(reg, "c"))
	// A rename: its event names both the new and the old name.
	renamed := e.Container("c")
	renamed.Name = "d"
	e.Delete("c")
	e.Set(renamed)
	rc.Enqueue("d")
	rc.Enqueue("c")
	await.Eventually(t, 5*time.Second, "c renamed to d", hasNames(reg, "d"))
	if reg.Get("d") == nil {
		t.Fatal("the renamed container is not managed")
	}
}

// TestReconcileReconnectsAndRelists: a broken stream is reconnected (with
// backoff) and followed by a full relist, which finds what changed during
// the outage, including a container removed meanwhile; failed lists mark
// the engine down and are retried.
func TestReconcileReconnectsAndRelists(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine(labelled("a"), labelled("b"))
	var reconnects atomic.Int32
	health := watcher.NewEngineHealth(watcher.EngineHealthConfig{})
	reg, rc := reconciler(t, e, watcher.ReconcilerConfig{Health: health, OnReconnect: func() { reconnects.Add(1) }})
	<-rc.Synced()
	await.Eventually(t, 5*time.Second, "a and b listed", hasNames(reg, "a", "b"))
	await.Eventually(t, 5*time.Second, "one subscription", func() bool { return e.Subscribers() == 1 })

	// The outage: b is removed and c created, and no event tells.
	e.FailLists(watchertest.ErrEngineGone)
	e.Delete("b")
	e.Set(labelled("c"))
	lists := e.Lists()
	e.Break(watchertest.ErrEngineGone)
	await.Eventually(t, 10*time.Second, "a failed list and a retry", func() bool { return e.Lists() >= lists+2 })
	await.Eventually(t, 10*time.Second, "the relist after reconnecting", hasNames(reg, "a", "c"))
	await.Eventually(t, 5*time.Second, "the reconnect counted", func() bool { return reconnects.Load() >= 1 })
	await.Eventually(t, 5*time.Second, "the engine healthy again", func() bool { return health.Check() == nil })

	// A stream that simply closes is a loss too.
	e.Set(labelled("d"))
	e.Break(nil)
	await.Eventually(t, 10*time.Second, "the relist after a closed stream", hasNames(reg, "a", "c", "d"))
}

// TestReconcileResync: the periodic resync relists without any event, and
// a failed resync list breaks the session, which reconnects.
func TestReconcileResync(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine(labelled("a"))
	reg, rc := reconciler(t, e, watcher.ReconcilerConfig{Resync: 20 * time.Millisecond})
	<-rc.Synced()
	e.Set(labelled("b"))
	await.Eventually(t, 10*time.Second, "b found by a resync", hasNames(reg, "a", "b"))
	e.FailLists(errors.New("resync list failed"))
	e.Set(labelled("c"))
	await.Eventually(t, 10*time.Second, "c found after the failed resync", hasNames(reg, "a", "b", "c"))
}

// TestRelistSkipsUnlabelledAndDuplicates: a listed container without the
// enable label that the registry knows is removed, and a name listed twice
// is applied once.
func TestRelistSkipsUnlabelledAndDuplicates(t *testing.T) {
	t.Parallel()
	plain := labelled("plain")
	plain.Labels = map[string]string{"other": "x"}
	e := watchertest.NewEngine(labelled("a"), plain)
	reg, rc := reconciler(t, e, watcher.ReconcilerConfig{Resync: 20 * time.Millisecond})
	<-rc.Synced()
	await.Eventually(t, 5*time.Second, "only a", hasNames(reg, "a"))
}
