package watcher

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestZeroWakeTimeoutMeansDefault: a hand-built spec without wake_timeout
// waits the default, in the wake and in every waiter alike. Before the wait
// policy lived in one place, a zero failed the wake at once (and the proxy's
// wait with it) while the streams waited a minute.
func TestZeroWakeTimeoutMeansDefault(t *testing.T) {
	t.Parallel()
	for _, hold := range []bool{false, true} {
		f := newFake(t)
		spec := testSpec()
		spec.WakeTimeout = 0
		w := newTestWatcher(t, f, spec)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		if hold {
			_, err = w.AcquireWait(ctx)
		} else {
			_, err = w.Wait(ctx)
		}
		cancel()
		if err != nil {
			t.Fatalf("hold %v: wake with a zero wake_timeout: %v, want the default timeout", hold, err)
		}
		if got, want := w.inflight.Load(), map[bool]int64{false: 0, true: 1}[hold]; got != want {
			t.Fatalf("hold %v: %d requests in flight after the wait, want %d", hold, got, want)
		}
		if hold {
			w.Release()
		}
	}
}

// TestAcquireWaitBoundedByWakeTimeout: the wait ends at the container's
// wake_timeout even when the caller's context would wait longer, with the
// error the answers map to 504.
func TestAcquireWaitBoundedByWakeTimeout(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	spec := testSpec()
	spec.WakeTimeout = 200 * time.Millisecond
	w := newTestWatcher(t, f, spec)
	f.mu.Lock()
	f.appDelay = time.Hour // the app never answers
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := w.AcquireWait(ctx)
	if !errors.Is(err, ErrWakeTimeout) {
		t.Fatalf("AcquireWait: %v, want ErrWakeTimeout", err)
	}
	if a := w.Answer(err); a.Status != 504 {
		t.Fatalf("answer %+v, want 504", a)
	}
	if n := w.inflight.Load(); n != 0 {
		t.Fatalf("%d in flight after a failed wait, want 0", n)
	}
}
