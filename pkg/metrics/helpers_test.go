package metrics

import (
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"sleeper/pkg/watcher"
)

// clock is a settable time source for measuring time asleep.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeSource stands in for the watcher registry.
type fakeSource []watcher.Info

func (f fakeSource) List() []watcher.Info { return f }

func newTestRecorder(t *testing.T) (*Recorder, *clock) {
	t.Helper()
	c := newClock()
	return New(Config{Version: "test", Now: c.Now}), c
}

// exercise calls every recorder method for one container.
func exercise(r *Recorder, name string) {
	r.ConfigError(name, false)
	for _, o := range outcomes {
		r.Request(name, o)
	}
	r.Held(name, 2)
	r.State(name, watcher.StateAsleep, watcher.StateWaking)
	r.Wake(name, "success", 1200*time.Millisecond)
	r.State(name, watcher.StateWaking, watcher.StateReady)
	r.Sleep(name, "stop", "idle")
	r.State(name, watcher.StateReady, watcher.StateAsleep)
}

// gatherLabeled returns the one series of metric whose container is name and,
// when key is set, whose label key is value.
func gatherLabeled(t *testing.T, r *Recorder, metric, name, key, value string) *dto.Metric {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labelMap(m)
			if l[labelContainer] == name && (key == "" || l[key] == value) {
				return m
			}
		}
	}
	t.Fatalf("no %s{container=%q,%s=%q}", metric, name, key, value)
	return nil
}

func gatherOne(t *testing.T, r *Recorder, metric, name string) *dto.Metric {
	t.Helper()
	return gatherLabeled(t, r, metric, name, "", "")
}

func stateValues(t *testing.T, r *Recorder, name string) map[string]float64 {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sleeper_container_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := labelMap(m); l[labelContainer] == name {
				got[l[labelState]] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

// countSeries counts every gathered series labelled with the container.
func countSeries(t *testing.T, r *Recorder, name string) int {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labelMap(m)[labelContainer] == name {
				n++
			}
		}
	}
	return n
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}
