package admin

import (
	"fmt"
	"strings"
	"time"

	"sleeper/pkg/watcher"
)

// memoryFreed is a sleeping container's memory use before it was stopped.
func memoryFreed(info watcher.Info) string {
	if info.MemoryFreed == 0 {
		return "—"
	}
	return formatBytes(info.MemoryFreed)
}

// policyText sums up a container's sleep policies in one cell: its group,
// its keep-warm schedule with the next window, and its busy guard.
func policyText(info watcher.Info, now time.Time) string {
	var parts []string
	if info.Group != "" {
		parts = append(parts, "group "+info.Group)
	}
	if info.AwakeDuring != "" {
		s := "awake " + info.AwakeDuring
		switch {
		case info.InWindow:
			s += " (in a window now)"
		case !info.NextWindow.IsZero():
			s += " (next " + nextWindow(info.NextWindow, now) + ")"
		}
		parts = append(parts, s)
	}
	if info.BusyCPU > 0 {
		parts = append(parts, fmt.Sprintf("busy above %g%% CPU", info.BusyCPU))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, " · ")
}

// nextWindow shows a window start in its own time zone (--timezone): the
// day when it is not today, and the clock time.
func nextWindow(t, now time.Time) string {
	n := now.In(t.Location())
	if t.YearDay() == n.YearDay() && t.Year() == n.Year() {
		return t.Format("15:04")
	}
	return t.Format("Mon 15:04")
}

// formatBytes writes a byte count in binary units, as docker stats does.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
