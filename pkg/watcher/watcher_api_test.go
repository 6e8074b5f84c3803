package watcher_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// heldRec records what a watcher reports of held requests and wakes.
type heldRec struct {
	watcher.NopRecorder
	mu    sync.Mutex
	held  []int
	wakes []string
}

func (r *heldRec) Held(_ string, n int) { r.mu.Lock(); r.held = append(r.held, n); r.mu.Unlock() }

func (r *heldRec) Wake(_, result string, _ time.Duration) {
	r.mu.Lock()
	r.wakes = append(r.wakes, result)
	r.mu.Unlock()
}

// lone is a watcher on its own (no registry) over the kit's engine, with
// an app behind its container.
func lone(t testing.TB, rec watcher.Recorder, extra ...string) (*watchertest.Engine, *watcher.Watcher) {
	t.Helper()
	c := labelled("app", extra...)
	e := watchertest.NewEngine(c)
	watchertest.NewApp(t, e, "app")
	spec, err := labels.Parse(c.Labels, labels.Options{Prefix: "sleeper", Name: "app", DefaultIdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := watcher.New(watcher.Config{Name: "app", Spec: spec, Runtime: e, Log: slog.New(slog.DiscardHandler), Recorder: rec})
	t.Cleanup(w.Close)
	e.Observe(w.Observe)
	w.Observe(e.Container("app"))
	return e, w
}

func wake(t testing.TB, w *watcher.Watcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKickProgressGeneration: Kick starts the shared wake without waiting
// and starts nothing when the container is ready; Progress shows the
// wake's steps (none before the first); Generation counts successful wakes.
func TestKickProgressGeneration(t *testing.T) {
	t.Parallel()
	rec := &heldRec{}
	e, w := lone(t, rec)
	if evs, changed := w.Progress(); evs != nil || changed == nil {
		t.Fatalf("progress before any wake: %v, %v; want none and a channel", evs, changed)
	}
	w.Kick()
	await.Eventually(t, 5*time.Second, "ready after a kick", func() bool { return w.State() == watcher.StateReady })
	if g := w.Generation(); g != 1 {
		t.Fatalf("generation %d after one wake, want 1", g)
	}
	w.Kick()
	if n := e.Calls("start", "app"); n != 1 {
		t.Fatalf("%d starts after a kick of a ready container, want 1", n)
	}
	evs, _ := w.Progress()
	if len(evs) == 0 || evs[0].Type != watcher.EventWaking || evs[len(evs)-1].Type != watcher.EventReady {
		t.Fatalf("progress of the last wake: %v", evs)
	}
	if err := w.Sleep(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	wake(t, w)
	if g := w.Generation(); g != 2 {
		t.Fatalf("generation %d after two wakes, want 2", g)
	}
	// The recorder hears of a wake just after its waiters do.
	await.Eventually(t, 5*time.Second, "two successful wakes recorded", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slicesEqual(rec.wakes, []string{"success", "success"})
	})
}

// TestHeldTouchInFlight: AddHeld counts waiting requests and tells the
// recorder; Touch is activity; InFlight counts acquired requests.
func TestHeldTouchInFlight(t *testing.T) {
	t.Parallel()
	rec := &heldRec{}
	_, w := lone(t, rec)
	if w.AddHeld(2) != 2 || w.AddHeld(-1) != 1 || w.AddHeld(-1) != 0 {
		t.Fatal("AddHeld does not count")
	}
	rec.mu.Lock()
	held := rec.held
	rec.mu.Unlock()
	if !slicesEqual(held, []int{2, 1, 0}) {
		t.Fatalf("recorded held %v, want [2 1 0]", held)
	}
	before := w.LastActivity()
	await.Eventually(t, 5*time.Second, "Touch to count as activity", func() bool {
		w.Touch()
		return w.LastActivity().After(before)
	})
	wake(t, w)
	if !w.Acquire() || w.InFlight() != 1 {
		t.Fatalf("in flight %d after an Acquire, want 1", w.InFlight())
	}
	w.Release()
	if w.InFlight() != 0 {
		t.Fatalf("in flight %d after Release, want 0", w.InFlight())
	}
}

// TestUpdateReschedulesIdle: a new spec (a recreate changed the labels) is
// served at once, and a ready container follows its new idle timeout.
func TestUpdateReschedulesIdle(t *testing.T) {
	t.Parallel()
	_, w := lone(t, nil)
	wake(t, w)
	spec := *w.Spec()
	spec.IdleTimeout = time.Second
	changed := w.Changed()
	w.Update(spec)
	select {
	case <-changed:
	default:
		t.Fatal("Update did not signal a change")
	}
	if w.Spec().IdleTimeout != time.Second {
		t.Fatalf("idle timeout %s after Update, want 1s", w.Spec().IdleTimeout)
	}
	await.Eventually(t, 10*time.Second, "asleep by the new idle timeout", func() bool { return w.State() == watcher.StateAsleep })
}

// TestSleepAnswers: Sleep while a wake runs is ErrBusy, on an asleep
// container nothing, on a closed watcher ErrClosed; a refused stop is a
// SleepError and the container stays ready; pause and kill are the stop
// methods they name, and a paused container is woken by an unpause.
func TestSleepAnswers(t *testing.T) {
	t.Parallel()
	t.Run("busy, asleep, closed", func(t *testing.T) {
		t.Parallel()
		e, w := lone(t, nil)
		if err := w.Sleep(t.Context(), "test"); err != nil {
			t.Fatalf("sleep of an asleep container: %v", err)
		}
		gate := make(chan struct{})
		e.Behave("app", watchertest.Behaviour{Gate: gate})
		w.Kick()
		if err := w.Sleep(t.Context(), "test"); !errors.Is(err, watcher.ErrBusy) {
			t.Fatalf("sleep during a wake: %v, want ErrBusy", err)
		}
		close(gate)
		wake(t, w)
		w.Close()
		if err := w.Sleep(t.Context(), "test"); !errors.Is(err, watcher.ErrClosed) {
			t.Fatalf("sleep after Close: %v, want ErrClosed", err)
		}
	})
	t.Run("refused stop", func(t *testing.T) {
		t.Parallel()
		e, w := lone(t, nil)
		wake(t, w)
		e.Behave("app", watchertest.Behaviour{StopErr: errTest})
		var se *watcher.SleepError
		if err := w.Sleep(t.Context(), "test"); !errors.As(err, &se) || !errors.Is(err, errTest) {
			t.Fatalf("sleep with a refused stop: %v, want a SleepError", err)
		}
		if w.State() != watcher.StateReady {
			t.Fatalf("state %v after a refused stop, want ready", w.State())
		}
	})
	for _, tc := range []struct{ method, op string }{{"pause", "pause"}, {"kill", "kill"}} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			e, w := lone(t, nil, "stop_method", tc.method)
			wake(t, w)
			if err := w.Sleep(t.Context(), "test"); err != nil {
				t.Fatal(err)
			}
			if e.Calls(tc.op, "app") != 1 || e.Calls("stop", "app") != 0 {
				t.Fatalf("%s: %d %s calls, %d stops", tc.method, e.Calls(tc.op, "app"), tc.op, e.Calls("stop", "app"))
			}
			wake(t, w)
			if tc.method == "pause" && (e.Calls("unpause", "app") != 1 || e.Calls("start", "app") != 1) {
				t.Fatalf("a paused container woken by %d unpauses and %d starts, want 1 and 1 (the first wake)",
					e.Calls("unpause", "app"), e.Calls("start", "app"))
			}
		})
	}
}

// TestStateNames: every state has its wire name, and an unknown one says so.
func TestStateNames(t *testing.T) {
	t.Parallel()
	want := []string{"asleep", "waking", "ready", "stopping", "error"}
	var got []string
	for _, s := range watcher.States() {
		got = append(got, s.String())
	}
	if !slicesEqual(got, want) || watcher.State(42).String() != "state(42)" {
		t.Fatalf("state names %v and %q", got, watcher.State(42).String())
	}
}
