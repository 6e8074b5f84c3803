package admin

import (
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

func TestPolicyCells(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 2, 20, 0, 0, 0, time.UTC)
	info := watcher.Info{Group: "media", AwakeDuring: "Mon-Fri 07:30-19:00", BusyCPU: 10,
		NextWindow: time.Date(2026, 11, 3, 7, 30, 0, 0, time.UTC), MemoryFreed: 3 << 20}
	if got, want := policyText(info, now), "group media · awake Mon-Fri 07:30-19:00 (next Tue 07:30) · busy above 10% CPU"; got != want {
		t.Errorf("policy %q, want %q", got, want)
	}
	if got := memoryFreed(info); got != "3.0 MiB" {
		t.Errorf("memory %q", got)
	}
	if got := policyText(watcher.Info{}, now); got != "—" {
		t.Errorf("no policy: %q", got)
	}
}
