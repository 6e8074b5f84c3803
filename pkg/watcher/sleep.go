package watcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sleeper/pkg/labels"
)

// ErrBusy is returned by Sleep when the container is waking: sleeping it
// would fail every client waiting on that wake.
var ErrBusy = errors.New("container is waking")

// armIdleLocked schedules the idle check at last activity + idle timeout.
// Callers hold w.mu.
func (w *Watcher) armIdleLocked() {
	idle := w.spec.Load().IdleTimeout
	if idle <= 0 || w.closed {
		w.stopTimerLocked()
		return
	}
	d := time.Duration(w.lastActivity.Load()+int64(idle)-monoNow()) + time.Millisecond
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.onIdle)
		return
	}
	w.timer.Reset(d)
}

func (w *Watcher) stopTimerLocked() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// onIdle runs when the idle timer fires. Requests do not reset the timer;
// this re-arms it for the remainder when there was activity since.
func (w *Watcher) onIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.State()
	sleepable := st == StateReady || (st == StateError && w.wake == nil && w.observed.Awake())
	if w.closed || !sleepable {
		return
	}
	idle := w.spec.Load().IdleTimeout
	if w.inflight.Load() > 0 && idle > 0 {
		// A request or an upgraded connection is open: check again a whole
		// timeout later; its end counts as activity anyway. The activity
		// time itself stays: an idle WebSocket is not activity.
		w.timer.Reset(idle)
		return
	}
	if idle <= 0 || monoNow()-w.lastActivity.Load() < int64(idle) {
		w.armIdleLocked()
		return
	}
	if w.holdInWindowLocked() {
		return // a keep-warm window: checked again when it ends
	}
	if w.graph != nil && w.graph.DependentsAwake(w.name) {
		// A dependency sleeps only after its dependents: check again a
		// timeout from now, or sooner when one of them sleeps (checkIdle).
		w.timer.Reset(idle)
		return
	}
	if w.holdWhileBusyLocked(idle) {
		return // the busy check runs the idle check again when quiet
	}
	if w.graph != nil && w.graph.SleepTogether(w.name) {
		// Another stub names the same guest: they sleep together, when all
		// are idle. Check again a timeout from now unless they do.
		w.timer.Reset(idle)
		return
	}
	// The mirror image of Acquire: publish Stopping, then read the count.
	w.setStateLocked(StateStopping)
	if w.inflight.Load() > 0 {
		w.setStateLocked(st)
		w.timer.Reset(idle)
		return
	}
	w.startSleepLocked("idle")
}

// checkIdle runs the idle check soon: a dependent just went to sleep, so
// this dependency may follow if its own idle time has passed.
func (w *Watcher) checkIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil && !w.closed && w.State() == StateReady {
		w.timer.Reset(time.Millisecond)
	}
}

// startSleepLocked puts the container to sleep in the background. The state
// must already be StateStopping. Callers hold w.mu.
func (w *Watcher) startSleepLocked(reason string) chan struct{} {
	w.stopTimerLocked()
	done := make(chan struct{})
	w.sleepDone = done
	w.sleepErr = nil
	spec := w.spec.Load()
	id := w.id
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		mem := w.memoryBeforeSleep(id, spec)
		err := w.putToSleep(id, spec)
		w.actionDone()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.sleepDone = nil
		w.sleepErr = err
		if err == nil {
			w.pol.memory = mem
		}
		close(done)
		if err != nil {
			w.log.Error("sleep failed", "method", string(spec.StopMethod), "error", err)
		} else {
			w.rec.Sleep(w.name, string(spec.StopMethod), reason)
			w.log.Info("asleep", "method", string(spec.StopMethod), "reason", reason)
		}
		if w.State() != StateStopping {
			return // a wake took over while we stopped
		}
		if err != nil {
			// Still running as far as we know: stay ready, try again later.
			w.setStateLocked(StateReady)
			w.lastActivity.Store(monoNow())
			w.armIdleLocked()
		} else {
			w.setStateLocked(StateAsleep)
			w.releaseDepsLocked()
		}
		w.broadcastLocked()
	}()
	return done
}

// putToSleep stops, pauses or kills the container per its stop_method.
func (w *Watcher) putToSleep(id string, spec *labels.Spec) error {
	ctx, cancel := context.WithTimeout(w.lifetime, spec.StopTimeout+30*time.Second)
	defer cancel()
	switch spec.StopMethod {
	case labels.StopMethodPause:
		if err := w.rt.Pause(ctx, id); err != nil {
			return fmt.Errorf("pause: %w", err)
		}
	case labels.StopMethodKill:
		sig := spec.StopSignal
		if sig == "" {
			sig = "SIGKILL"
		}
		if err := w.rt.Kill(ctx, id, sig); err != nil {
			return fmt.Errorf("kill %s: %w", sig, err)
		}
	default:
		if err := w.rt.Stop(ctx, id, StopOptions{Signal: spec.StopSignal, Timeout: spec.StopTimeout}); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
	}
	return nil
}

// Sleep puts the container to sleep now, whatever its idle time, and waits
// until it is asleep. A stop that failed, or a ctx that ended first, is a
// *SleepError. Requests in flight are not waited for: this is the
// operator's explicit wish (the admin API's sleep).
func (w *Watcher) Sleep(ctx context.Context, reason string) error {
	w.mu.Lock()
	var done chan struct{}
	switch st := w.State(); {
	case w.closed:
		w.mu.Unlock()
		return ErrClosed
	case st == StateWaking:
		w.mu.Unlock()
		return ErrBusy
	case st == StateStopping:
		done = w.sleepDone
	case st == StateReady || (st == StateError && w.observed.Awake()):
		w.setStateLocked(StateStopping)
		done = w.startSleepLocked(reason)
	default:
		w.mu.Unlock()
		return nil // already asleep
	}
	w.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.sleepErr != nil {
			return &SleepError{Container: w.name, Err: w.sleepErr}
		}
		return nil
	case <-ctx.Done():
		return &SleepError{Container: w.name, Err: ctx.Err()}
	}
}
