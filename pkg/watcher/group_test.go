package watcher_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/watcher"
)

// TestGroupWakesAndSleepsTogether: a wake of one member wakes the others;
// the group sleeps only when every member is idle for its own timeout.
func TestGroupWakesAndSleepsTogether(t *testing.T) {
	t.Parallel()
	member := func(id, name string) watcher.Container {
		return watcher.Container{ID: id, Name: name, Status: watcher.StatusStopped, Created: time.Now(),
			Labels: map[string]string{"sleeper.enable": "true", "sleeper.idle_timeout": "50ms", "sleeper.group": "media"}}
	}
	a, b := member("ida", "a"), member("idb", "b")
	c := watcher.Container{ID: "idc", Name: "c", Status: watcher.StatusStopped, Created: time.Now(),
		Labels: map[string]string{"sleeper.enable": "true"}}
	eng := watchertest.NewEngine(a, b, c)
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: eng, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	reg.ApplyAll([]watcher.Container{a, b, c})
	wa, wb := reg.Get("a"), reg.Get("b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := wa.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 3*time.Second, "b woken with a", func() bool { return wb.State() == watcher.StateReady })
	if n := eng.Calls("start", "c"); n != 0 {
		t.Errorf("c, not in the group, was started %d times", n)
	}
	// b has a request open: a's idle time passes, but the group stays up.
	if !wb.Acquire() {
		t.Fatal("b not ready")
	}
	await.HoldsFor(t, 300*time.Millisecond, "a awake while b is active", func() bool {
		return eng.Container("a").Status == watcher.StatusRunning
	})
	wb.Release()
	await.Eventually(t, 3*time.Second, "both asleep", func() bool {
		return eng.Container("a").Status == watcher.StatusStopped && eng.Container("b").Status == watcher.StatusStopped
	})
}
