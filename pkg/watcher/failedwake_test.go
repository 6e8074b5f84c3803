package watcher

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// holds checks that cond stays true for d, polling.
func holds(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s no longer holds", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTimedOutWakeCountsAsActivity: a wake that passes wake_timeout leaves
// the container up for at least idle_timeout after it, however long ago the
// last request before the nap was; so does a readiness wait after a start
// by hand.
func TestTimedOutWakeCountsAsActivity(t *testing.T) {
	t.Parallel()
	for _, byHand := range []bool{false, true} {
		name := "sleeper starts it"
		if byHand {
			name = "started by hand"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.appDelay = time.Hour // slower than wake_timeout
			spec := testSpec()
			spec.WakeTimeout = 100 * time.Millisecond
			w := New(Config{Name: "app", Spec: spec, Runtime: f, Log: slog.New(slog.DiscardHandler)})
			t.Cleanup(w.Close)
			f.onDie = w.Observe
			// The last request before the nap was two idle timeouts ago.
			w.lastActivity.Store(monoNow() - int64(2*spec.IdleTimeout))
			before := time.Now()
			if byHand {
				f.c.Status, f.c.StartedAt = StatusRunning, time.Now()
				w.Observe(f.c)
				await.Eventually(t, 5*time.Second, "the readiness wait to end", func() bool { return w.State() != StateWaking })
			} else {
				w.Observe(f.c)
				if _, err := w.Wait(context.Background()); !errors.Is(err, ErrWakeTimeout) {
					t.Fatalf("wake: %v, want %v", err, ErrWakeTimeout)
				}
			}
			if w.LastActivity().Before(before) {
				t.Fatalf("last activity %s is before the failed wake", w.LastActivity())
			}
			holds(t, 300*time.Millisecond, func() bool { return f.count("stop") == 0 }, "no stop after the timed-out wake")
			if info := w.Info(); info.State != StateError {
				t.Fatalf("state %s, want error", info.State)
			}
		})
	}
}
