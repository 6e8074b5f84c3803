package watcher

import (
	"context"
	"time"
)

// Usage is a container's resource use as its engine reports it.
type Usage struct {
	// CPUPercent is the CPU use over the engine's last sampling interval,
	// in percent of one CPU (200 is two full CPUs); 0 when not measured.
	CPUPercent float64
	// MemoryBytes is the memory in use now (the engine's figure, page
	// cache excluded where it says so).
	MemoryBytes uint64
}

// Stats reads a container's resource use in one call, without a stream.
// A Runtime may implement it; the busy guard and the memory freed need it.
type Stats interface {
	// Stats reads memory use, and with cpu the CPU use over the last
	// interval (which may take the engine a second to sample).
	Stats(ctx context.Context, id string, cpu bool) (Usage, error)
}

// PolicyRecorder is a Recorder that also counts postponed sleeps. It is
// optional: a Recorder without it simply does not count them.
type PolicyRecorder interface {
	// SleepPostponed records an idle sleep put off; reason is "schedule"
	// (inside a keep-warm window) or "busy" (CPU above busy_cpu).
	SleepPostponed(container, reason string)
}

// busyInterval is how long a busy container is left before its CPU is read
// again: its idle timeout, at most a minute, so that a job that ends is
// followed by sleep soon, and a short timeout is not hammered either.
func busyInterval(idle time.Duration) time.Duration {
	return max(min(idle, time.Minute), time.Second)
}

func (w *Watcher) postponed(reason string) {
	if pr, ok := w.rec.(PolicyRecorder); ok {
		pr.SleepPostponed(w.name, reason)
	}
}

// holdWhileBusyLocked is the busy guard's part of the idle decision. With
// busy_cpu set, a container whose idle time is up is not put to sleep until
// a fresh read of its CPU says it is quiet: the read runs in the
// background (it takes the engine about a second), then the idle check
// runs again. Callers hold w.mu and the timer exists.
func (w *Watcher) holdWhileBusyLocked(idle time.Duration) bool {
	stats, ok := w.rt.(Stats)
	if w.spec.Load().BusyCPU <= 0 || !ok {
		return false
	}
	if monoNow() < w.pol.quietUntil {
		return false // quiet a moment ago: sleep
	}
	if w.pol.checking {
		return true
	}
	w.pol.checking = true
	id := w.id
	w.wg.Add(1)
	go w.checkBusy(stats, id, idle)
	return true
}

// busyLocked reports whether the busy guard keeps the container up as a
// member of a group: it has busy_cpu and no fresh quiet reading. Its own
// idle check takes the reading. Callers hold w.mu.
func (w *Watcher) busyLocked() bool {
	_, ok := w.rt.(Stats)
	return ok && w.spec.Load().BusyCPU > 0 && monoNow() >= w.pol.quietUntil
}

// checkBusy reads the container's CPU and decides: busy postpones the sleep
// by busyInterval; quiet (or no reading at all: a broken stats call must
// not keep a container up forever) lets the idle check run again now.
func (w *Watcher) checkBusy(stats Stats, id string, idle time.Duration) {
	defer w.wg.Done()
	ctx, cancel := context.WithTimeout(w.lifetime, 10*time.Second)
	u, err := stats.Stats(ctx, id, true)
	cancel()
	w.mu.Lock()
	w.pol.checking = false
	if w.closed {
		w.mu.Unlock()
		return
	}
	limit := w.spec.Load().BusyCPU
	interval := busyInterval(idle)
	switch {
	case err != nil:
		w.log.Warn("busy check: cannot read CPU use; sleeping as if quiet", "error", err)
		w.pol.quietUntil = monoNow() + int64(interval)
	case u.CPUPercent > limit:
		w.log.Info("sleep postponed: busy", "cpu_percent", round1(u.CPUPercent),
			"busy_cpu", limit, "check_again_in", interval.String())
		w.postponed("busy")
		if w.timer != nil && w.State() == StateReady {
			w.timer.Reset(interval)
		}
		w.mu.Unlock()
		return
	default:
		w.log.Debug("busy check: quiet", "cpu_percent", round1(u.CPUPercent), "busy_cpu", limit)
		w.pol.quietUntil = monoNow() + int64(interval)
		w.pol.checked = &u
	}
	w.mu.Unlock()
	w.onIdle()
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
