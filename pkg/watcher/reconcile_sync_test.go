package watcher_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/watcher"
)

// TestSyncedWaitsForACompleteList: a failed first list and a list that
// hangs do not count as discovery. Synced (and /healthz) follows the first
// complete list.
func TestSyncedWaitsForACompleteList(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine(labelled("fast"), labelled("slow"))
	e.FailLists(watchertest.ErrEngineGone) // the engine goes away during discovery
	release := make(chan struct{})
	e.HoldLists(release) // and its next list hangs
	health := watcher.NewEngineHealth(watcher.EngineHealthConfig{})
	reg, rc := reconciler(t, e, watcher.ReconcilerConfig{Health: health})
	t.Cleanup(func() { e.HoldLists(nil) })

	await.Eventually(t, 10*time.Second, "a list after the failed one", func() bool { return e.Lists() >= 2 })
	// The second list hangs: discovery is not done, whatever the queue
	// holds, and the engine has not answered a list yet.
	await.HoldsFor(t, 300*time.Millisecond, "waiting for discovery", func() bool {
		select {
		case <-rc.Synced():
			t.Logf("synced after a cut-short list; registry has %v", reg.Names())
			return false
		default:
		}
		err := health.Check()
		if !errors.Is(err, watcher.ErrEngineWaiting) {
			t.Logf("health during discovery: %v, want ErrEngineWaiting", err)
		}
		return errors.Is(err, watcher.ErrEngineWaiting)
	})
	close(release)
	select {
	case <-rc.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("never synced after a complete list")
	}
	if got := reg.Names(); !slices.Contains(got, "fast") || !slices.Contains(got, "slow") {
		t.Errorf("registry after sync: %v, want fast and slow", got)
	}
	await.Eventually(t, 5*time.Second, "healthy after sync", func() bool { return health.Check() == nil })
}
