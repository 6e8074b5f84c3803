package watcher

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

func TestWakeIsSharedByConcurrentWaiters(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.appDelay = 50 * time.Millisecond
	w := newTestWatcher(t, f, testSpec())
	if w.Acquire() {
		t.Fatal("Acquire succeeded on a sleeping container")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Go(func() {
			_, err := w.Wait(context.Background())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if n := f.count("start"); n != 1 {
		t.Fatalf("start called %d times, want 1", n)
	}
	if w.State() != StateReady || !w.Acquire() {
		t.Fatalf("state %s after wake, want ready", w.State())
	}
	w.Release()
	if u := upstreamURL(t, w); u.Host != f.c.Published["80/tcp"] {
		t.Fatalf("upstream %s, want the published address", u)
	}
}

func TestReadinessIgnoresAcceptThenClose(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.appDelay = 300 * time.Millisecond
	w := newTestWatcher(t, f, testSpec())
	start := time.Now()
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("ready after %s, before the app answered (300ms)", el)
	}
}

func TestIdleSleepAndInflightKeepsAwake(t *testing.T) {
	t.Parallel()
	for _, method := range []labels.StopMethod{labels.StopMethodStop, labels.StopMethodPause, labels.StopMethodKill} {
		t.Run(string(method), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			spec := testSpec()
			spec.IdleTimeout = 100 * time.Millisecond
			spec.StopMethod = method
			w := newTestWatcher(t, f, spec)
			if _, err := w.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			// An open request holds it awake well past the timeout.
			if !w.Acquire() {
				t.Fatal("Acquire failed on a ready container")
			}
			time.Sleep(350 * time.Millisecond) // the thing under test is the passing of time
			if w.State() != StateReady {
				t.Fatalf("slept with a request in flight: %s", w.State())
			}
			w.Release()
			await.Eventually(t, 2*time.Second, "sleep after idle", func() bool { return w.State() == StateAsleep })
			if n := f.count(string(method)); n != 1 {
				t.Fatalf("%s called %d times, want 1", method, n)
			}
			// And it wakes again.
			if _, err := w.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			starts, unpauses := 2, 0
			if method == labels.StopMethodPause {
				starts, unpauses = 1, 1
			}
			if f.count("start") != starts || f.count("unpause") != unpauses {
				t.Fatalf("calls %v, want %d starts and %d unpauses", f.calls, starts, unpauses)
			}
		})
	}
}

func TestWakeFailures(t *testing.T) {
	t.Parallel()
	t.Run("start error and backoff", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.startErr = errBoom
		w := newTestWatcher(t, f, testSpec())
		_, err := w.Wait(context.Background())
		var we *WakeError
		if !errors.As(err, &we) || !errors.Is(err, errBoom) {
			t.Fatalf("err = %v, want a WakeError wrapping boom", err)
		}
		// Within the backoff the failure is returned without a new start.
		_, err = w.Wait(context.Background())
		if !errors.Is(err, errBoom) || f.count("start") != 1 {
			t.Fatalf("second Wait: err=%v starts=%d, want cached failure and 1 start", err, f.count("start"))
		}
		if info := w.Info(); info.State != StateError || info.Error == "" {
			t.Fatalf("info %+v, want error state with a reason", info)
		}
	})
	t.Run("dies while waking", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.exitOnStart = true
		// With an hour's wake timeout, a failure that waited for it would
		// never come: only the container's death can end this wait.
		spec := testSpec()
		spec.WakeTimeout = time.Hour
		w := newTestWatcher(t, f, spec)
		_, err := w.Wait(context.Background())
		// Callers match the exit by type, not by its text.
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Code != 3 {
			t.Fatalf("err = %v, want an *ExitError with code 3", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.appDelay = time.Hour
		spec := testSpec()
		spec.WakeTimeout = 200 * time.Millisecond
		w := newTestWatcher(t, f, spec)
		_, err := w.Wait(context.Background())
		if !errors.Is(err, ErrWakeTimeout) {
			t.Fatalf("err = %v, want ErrWakeTimeout", err)
		}
	})
}

func TestExternalChanges(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.appUp = true
	f.c.Status = StatusRunning
	f.c.StartedAt = time.Now()
	w := newTestWatcher(t, f, testSpec())
	// Found running: ready without any start.
	await.Eventually(t, 2*time.Second, "ready", func() bool { return w.State() == StateReady })
	if f.count("start") != 0 {
		t.Fatal("a running container was started")
	}
	// Stopped by hand: asleep, and sleeper did not stop it.
	c := f.c
	c.Status, c.FinishedAt = StatusStopped, time.Now()
	w.Observe(c)
	if w.State() != StateAsleep || f.count("stop") != 0 {
		t.Fatalf("state %s stops %d, want asleep and no stop", w.State(), f.count("stop"))
	}
	// A stale observation (older run) changes nothing.
	stale := c
	stale.Status, stale.StartedAt = StatusRunning, c.StartedAt.Add(-time.Minute)
	w.Observe(stale)
	if w.State() != StateAsleep {
		t.Fatalf("stale observation woke the watcher: %s", w.State())
	}
}

func TestSleepNowAndClose(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, testSpec())
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Sleep(context.Background(), "api"); err != nil {
		t.Fatal(err)
	}
	if w.State() != StateAsleep || f.count("stop") != 1 {
		t.Fatalf("state %s stops %d after Sleep", w.State(), f.count("stop"))
	}
	w.Close()
	if _, err := w.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v, want ErrClosed", err)
	}
	if f.count("start") != 1 {
		t.Fatal("Close started or stopped something")
	}
}
