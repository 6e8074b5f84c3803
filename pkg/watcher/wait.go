package watcher

import (
	"context"
	"time"

	"sleeper/pkg/labels"
)

// wakeRounds is how many times a waiter starts or joins a wake before it
// gives up with ErrNotReady: a container put back to sleep between its wake
// and the waiter (an API sleep, a stop by hand) is woken again, but not
// forever.
const wakeRounds = 3

// AcquireWait is the one wait policy of every front door: it returns at once
// holding the container if it is ready (Acquire), else starts or joins the
// shared wake and waits for it, within the container's wake_timeout and ctx,
// and acquires it. A container put back to sleep between the wake and the
// caller is woken again, up to wakeRounds times. On success the caller holds
// the container and must Release it; the duration is that of the wake it
// waited on (zero when the container was ready). Errors map to answers
// through Answer.
func (w *Watcher) AcquireWait(ctx context.Context) (time.Duration, error) {
	return w.await(ctx, true)
}

// Wait is AcquireWait for a caller that does not hold the container once it
// is ready: an API wake, a UDP flow (which holds it per batch), a dependent
// waiting for a dependency.
func (w *Watcher) Wait(ctx context.Context) (time.Duration, error) {
	return w.await(ctx, false)
}

// waitGrace is how much longer than wake_timeout a waiter waits. A wake
// ends itself at wake_timeout and then does its bookkeeping (the failed
// wake counts as activity, its error is recorded): the waiter must see that
// ending, not race it with a timer of its own. The bound matters only for a
// waiter that goes round again after a wake that succeeded.
const waitGrace = time.Second

// await is AcquireWait (hold) or Wait.
func (w *Watcher) await(ctx context.Context, hold bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, wakeTimeout(w.spec.Load())+waitGrace, ErrWakeTimeout)
	defer cancel()
	var dur time.Duration
	for range wakeRounds {
		if w.usable(hold) {
			return dur, nil
		}
		op := w.ensureWake()
		if op == nil {
			continue // ready since usable looked: look again
		}
		select {
		case <-op.done:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
		if op.err != nil {
			return op.dur, op.err
		}
		dur = op.dur
	}
	if w.usable(hold) {
		return dur, nil
	}
	return 0, &WakeError{Container: w.name, Err: ErrNotReady}
}

// usable reports whether the container is ready, acquiring it if hold.
func (w *Watcher) usable(hold bool) bool {
	if hold {
		return w.Acquire()
	}
	return w.State() == StateReady
}

// wakeTimeout is the spec's wake_timeout. The labels always set one; a zero
// in a hand-built spec would fail every wake at once, so it means the default.
func wakeTimeout(spec *labels.Spec) time.Duration {
	if spec.WakeTimeout > 0 {
		return spec.WakeTimeout
	}
	return labels.DefaultWakeTimeout
}
