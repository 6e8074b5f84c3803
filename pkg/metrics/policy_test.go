package metrics

import (
	"testing"

	"sleeper/pkg/watcher"
)

// TestMemoryFreedAndPostponed: the memory a sleeping container freed is a
// per-container gauge (0 for an awake one), and postponed sleeps are counted
// by reason until the container is forgotten.
func TestMemoryFreedAndPostponed(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	r.Watch(fakeSource{
		{Name: "asleep", Managed: true, State: watcher.StateAsleep, MemoryFreed: 48 << 20},
		{Name: "awake", Managed: true, State: watcher.StateReady},
	})
	r.ConfigError("asleep", false)
	r.ConfigError("awake", false)
	if v := gatherOne(t, r, "sleeper_memory_freed_bytes", "asleep").GetGauge().GetValue(); v != 48<<20 {
		t.Errorf("asleep: %v", v)
	}
	if v := gatherOne(t, r, "sleeper_memory_freed_bytes", "awake").GetGauge().GetValue(); v != 0 {
		t.Errorf("awake: %v", v)
	}
	r.SleepPostponed("awake", "busy")
	r.SleepPostponed("awake", "busy")
	r.SleepPostponed("awake", "schedule")
	if v := gatherLabeled(t, r, "sleeper_sleeps_postponed_total", "awake", labelReason, "busy").GetCounter().GetValue(); v != 2 {
		t.Errorf("busy: %v", v)
	}
	r.Forget("awake")
	r.SleepPostponed("awake", "busy") // late: dropped
	mfs, _ := r.Gatherer().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "sleeper_sleeps_postponed_total" && len(mf.GetMetric()) > 0 {
			t.Errorf("postponed series left after Forget: %v", mf.GetMetric())
		}
	}
}
