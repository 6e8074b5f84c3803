package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/puzpuzpuz/xsync/v4"

	"sleeper/pkg/watcher"
)

// tombstoneTTL is how long a forgotten container's entry is kept to swallow
// late calls. They come from requests that were in flight when the container
// went away, which the registry releases at once when it closes the watcher,
// so a minute is ample.
const tombstoneTTL = time.Minute

// series is what the recorder keeps per container: the counts of the hot
// path, and the state the scrape-time collector reports. Counts are plain
// atomics rather than prometheus.Counter children: the always-present series
// of a thousand containers would otherwise cost about 4 KB each in label
// pairs and vector entries, twice sleeper's own per-container state. The
// scrape-time collector writes them out with the same names, labels and
// zeros as counters would.
type series struct {
	created time.Time // the counters' created timestamp

	requests [len(outcomes)]atomic.Uint64
	held     atomic.Int64
	wakes    [len(wakeResults)]atomic.Uint64 // wakes[0] is success

	mu     sync.Mutex
	state  watcher.State
	since  time.Time     // when state began
	asleep time.Duration // past asleep stretches, the current one excluded
	broken bool          // the labels are broken (ConfigError)
	// rare counts values outside outcomes and wakeResults (an outcome this
	// package does not know yet, a "cancelled" wake): their series appear
	// on first use, as a counter vector's would.
	rare map[rareKey]uint64
	// forgotten is when Forget was called; zero while the container is known.
	// Wake, Sleep and State check it under mu so that they cannot recreate
	// series that Forget deleted; the collector skips a forgotten series, so
	// late requests counted on it are never shown.
	forgotten time.Time
}

// rareKey names one rarely used series of a container.
type rareKey struct {
	wake  bool   // sleeper_wakes_total; else sleeper_requests_total
	value string // the result or outcome
}

// newSeries creates a container's series. A watcher starts asleep and does
// not report that first state, so neither does it need to here.
func (r *Recorder) newSeries() *series {
	now := r.now()
	return &series{created: now, state: watcher.StateAsleep, since: now}
}

// get returns the container's series, creating it on first use. The common
// case is a single lock-free load.
func (r *Recorder) get(name string) *series {
	if s, ok := r.series.Load(name); ok {
		return s
	}
	s, _ := r.series.LoadOrCompute(name, func() (*series, bool) { return r.newSeries(), false })
	return s
}

// Request implements watcher.Recorder. It is on the hot path: one map load
// and one atomic add, no allocation for the outcomes the proxy reports.
func (r *Recorder) Request(container, outcome string) {
	s := r.get(container)
	for i := range outcomes {
		if outcomes[i] == outcome {
			s.requests[i].Add(1)
			return
		}
	}
	// An outcome this package does not know yet: still counted, the slow way.
	s.addRare(rareKey{value: outcome})
}

// addRare counts one rare series, unless the container is forgotten.
func (s *series) addRare(k rareKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forgotten.IsZero() {
		return
	}
	if s.rare == nil {
		s.rare = map[rareKey]uint64{}
	}
	s.rare[k]++
}

// Held implements watcher.Recorder.
func (r *Recorder) Held(container string, n int) {
	r.get(container).held.Store(int64(n))
}

// Wake implements watcher.Recorder. Only successful wakes feed the duration
// histogram: a timeout would record wake_timeout itself, and failures are
// counted by result in sleeper_wakes_total.
func (r *Recorder) Wake(container, result string, d time.Duration) {
	s := r.get(container)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forgotten.IsZero() {
		return
	}
	if result == "success" {
		engine, name := watcher.SplitKey(container)
		r.wakeDur.WithLabelValues(name, engine).Observe(d.Seconds())
	}
	for i := range wakeResults {
		if wakeResults[i] == result {
			s.wakes[i].Add(1)
			return
		}
	}
	if s.rare == nil {
		s.rare = map[rareKey]uint64{}
	}
	s.rare[rareKey{wake: true, value: result}]++
}

// Sleep implements watcher.Recorder. A container stopped or paused by hand is
// reported without a method; it is recorded as method="unknown" because an
// empty label value reads as a missing label in PromQL.
func (r *Recorder) Sleep(container, method, reason string) {
	if method == "" {
		method = "unknown"
	}
	s := r.get(container)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forgotten.IsZero() {
		return
	}
	engine, name := watcher.SplitKey(container)
	r.sleeps.WithLabelValues(name, engine, method, reason).Inc()
}

// SleepPostponed implements watcher.PolicyRecorder.
func (r *Recorder) SleepPostponed(container, reason string) {
	s := r.get(container)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forgotten.IsZero() {
		return
	}
	engine, name := watcher.SplitKey(container)
	r.postponed.WithLabelValues(name, engine, reason).Inc()
}

// State implements watcher.Recorder. It closes the current asleep stretch
// when the container leaves StateAsleep, for sleeper_asleep_seconds_total.
func (r *Recorder) State(container string, _, to watcher.State) {
	s := r.get(container)
	now := r.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forgotten.IsZero() || s.state == to {
		return
	}
	if s.state == watcher.StateAsleep {
		s.asleep += now.Sub(s.since)
	}
	s.state, s.since = to, now
}

// ConfigError implements watcher.Recorder. The registry calls it on every
// Apply, before the container has a watcher, so it is also where a container
// that was forgotten and comes back (a recreate) gets fresh series.
func (r *Recorder) ConfigError(container string, broken bool) {
	s, _ := r.series.Compute(container, func(old *series, loaded bool) (*series, xsync.ComputeOp) {
		if loaded && !old.isForgotten() {
			return old, xsync.CancelOp
		}
		return r.newSeries(), xsync.UpdateOp
	})
	s.mu.Lock()
	s.broken = broken
	s.mu.Unlock()
}

func (s *series) isForgotten() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.forgotten.IsZero()
}

// Forget implements watcher.Recorder: every series of the container goes
// (the collector skips a forgotten entry; the vectors' series are deleted).
// The entry stays a while as a tombstone so that late calls are dropped
// instead of recreating what was just deleted.
func (r *Recorder) Forget(container string) {
	now := r.now()
	engine, name := watcher.SplitKey(container)
	match := prometheus.Labels{labelContainer: name, labelEngine: engine}
	// Inside Compute, so that a ConfigError for the same name (a recreate)
	// runs wholly before or after. Mark first, then delete: a concurrent
	// Wake either finished before the mark (its series is deleted here) or
	// sees the mark and records nothing.
	r.series.Compute(container, func(s *series, loaded bool) (*series, xsync.ComputeOp) {
		if loaded {
			s.mu.Lock()
			s.forgotten = now
			s.mu.Unlock()
		}
		r.wakeDur.DeletePartialMatch(match)
		r.sleeps.DeletePartialMatch(match)
		r.postponed.DeletePartialMatch(match)
		return s, xsync.CancelOp
	})
	r.series.DeleteMatching(func(_ string, s *series) (bool, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.forgotten.IsZero() && now.Sub(s.forgotten) > tombstoneTTL, false
	})
}
