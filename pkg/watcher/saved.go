package watcher

import (
	"context"
	"time"

	"sleeper/pkg/labels"
)

// memoryBeforeSleep reads the container's memory use just before it is put
// to sleep, for what sleeping frees: the busy check's reading when it just
// took one (the same call), else a one-shot read of memory only. It returns
// 0 when the runtime cannot tell, for pause, which frees no memory, and for
// a stub whose guest another stub is credited with.
func (w *Watcher) memoryBeforeSleep(id string, spec *labels.Spec) uint64 {
	stats, ok := w.rt.(Stats)
	if !ok || spec.StopMethod == labels.StopMethodPause {
		return 0
	}
	if w.graph != nil && !w.graph.CreditsWorkload(w.name) {
		return 0 // another stub of the same guest is credited with it
	}
	w.mu.Lock()
	checked := w.pol.checked
	if monoNow() >= w.pol.quietUntil {
		checked = nil // an old reading: the container has run since
	}
	w.pol.checked = nil
	w.mu.Unlock()
	if checked != nil {
		return checked.MemoryBytes
	}
	ctx, cancel := context.WithTimeout(w.lifetime, 5*time.Second)
	defer cancel()
	u, err := stats.Stats(ctx, id, false)
	if err != nil {
		w.log.Debug("memory use before sleep not read", "error", err)
		return 0
	}
	return u.MemoryBytes
}

// policyInfoLocked adds the policies' view to Info. Callers hold w.mu.
func (w *Watcher) policyInfoLocked(info *Info) {
	spec := w.spec.Load()
	info.Group = spec.Group
	info.BusyCPU = spec.BusyCPU
	if len(spec.AwakeDuring) > 0 {
		info.AwakeDuring = spec.AwakeDuring.String()
		info.NextWindow, info.InWindow = w.nextWindowLocked()
		if info.InWindow {
			info.SleepsAt = time.Time{} // not before the window ends
		}
	}
	if info.State == StateAsleep {
		info.MemoryFreed = w.pol.memory
	}
}
