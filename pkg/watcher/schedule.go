package watcher

import (
	"time"
)

// policy is what the sleep policies (keep-warm windows, the busy guard,
// memory freed) keep per watcher. It is guarded by the watcher's mu.
type policy struct {
	loc *time.Location   // --timezone; windows are read in it
	now func() time.Time // the wall clock; a test's fake one

	windowTimer *time.Timer // wakes the container at the next window's start
	checking    bool        // a busy check runs
	quietUntil  int64       // monoNow() until which the last busy check's "quiet" holds
	checked     *Usage      // what that check read, reused for the memory freed
	memory      uint64      // memory use read just before the last sleep; 0 unknown or not freed
}

func newPolicy(cfg Config) policy {
	p := policy{loc: cfg.Location, now: cfg.Now}
	if p.loc == nil {
		p.loc = time.Local
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// wallNow is the current time in the schedule's time zone.
func (w *Watcher) wallNow() time.Time { return w.pol.now().In(w.pol.loc) }

// inWindowLocked reports whether now is inside a keep-warm window, and
// when that window ends. Callers hold w.mu.
func (w *Watcher) inWindowLocked() (time.Time, bool) {
	s := w.spec.Load().AwakeDuring
	if len(s) == 0 {
		return time.Time{}, false
	}
	return s.Active(w.wallNow())
}

// holdInWindowLocked is the schedule's part of the idle decision: inside a
// window the container does not sleep; the idle check runs again just after
// the window ends, when the idle timeout applies as usual. Callers hold
// w.mu and the timer exists.
func (w *Watcher) holdInWindowLocked() bool {
	end, ok := w.inWindowLocked()
	if !ok {
		return false
	}
	d := end.Sub(w.wallNow()) + time.Millisecond
	w.timer.Reset(d)
	w.postponed("schedule")
	w.log.Debug("sleep postponed: inside a keep-warm window", "window_ends", end.Format(time.RFC3339))
	return true
}

// armWindowLocked schedules the wake at the next window's start, replacing
// any earlier one. Callers hold w.mu.
func (w *Watcher) armWindowLocked() {
	if w.pol.windowTimer != nil {
		w.pol.windowTimer.Stop()
		w.pol.windowTimer = nil
	}
	s := w.spec.Load().AwakeDuring
	if len(s) == 0 || w.closed {
		return
	}
	now := w.wallNow()
	next := s.Next(now)
	if next.IsZero() {
		return
	}
	w.pol.windowTimer = time.AfterFunc(next.Sub(now), w.onWindowStart)
}

// onWindowStart wakes the container at the start of a keep-warm window and
// arms the next start. A container already awake simply stays so.
func (w *Watcher) onWindowStart() {
	w.mu.Lock()
	closed := w.closed
	if !closed {
		w.armWindowLocked()
	}
	w.mu.Unlock()
	if closed {
		return
	}
	w.log.Info("keep-warm window starts: waking")
	w.Kick()
}

// stopWindowLocked stops the window timer when the watcher closes. Callers hold w.mu.
func (w *Watcher) stopWindowLocked() {
	if w.pol.windowTimer != nil {
		w.pol.windowTimer.Stop()
	}
}

// NextWindow returns the start of the next keep-warm window after now, or
// zero without a schedule; and whether now is inside one.
func (w *Watcher) nextWindowLocked() (next time.Time, inside bool) {
	s := w.spec.Load().AwakeDuring
	if len(s) == 0 {
		return time.Time{}, false
	}
	now := w.wallNow()
	_, inside = s.Active(now)
	return s.Next(now), inside
}
