package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sleeper/pkg/watcher"
)

// scrapeCollector computes, at scrape time, the metrics that are state
// rather than events. Doing it here instead of on every change keeps the
// request path free of metric writes and makes a one-hot state gauge exact
// by construction.
type scrapeCollector struct {
	r   *Recorder
	src atomic.Pointer[Source] // nil until Watch

	state        *prometheus.Desc
	wakes        *prometheus.Desc
	requests     *prometheus.Desc
	held         *prometheus.Desc
	asleep       *prometheus.Desc
	configErrors *prometheus.Desc
	active       *prometheus.Desc
	lastActivity *prometheus.Desc
}

func newScrapeCollector(r *Recorder) *scrapeCollector {
	byContainer := []string{labelContainer}
	return &scrapeCollector{
		r: r,
		state: prometheus.NewDesc("sleeper_container_state",
			"1 for the container's current state, 0 for the others.",
			[]string{labelContainer, labelState}, nil),
		wakes: prometheus.NewDesc("sleeper_wakes_total",
			"Finished wakes by result (success, timeout, error, cancelled).",
			[]string{labelContainer, labelResult}, nil),
		requests: prometheus.NewDesc("sleeper_requests_total",
			"HTTP requests by outcome (proxied, loading_page, held, rejected, error).",
			[]string{labelContainer, labelOutcome}, nil),
		held: prometheus.NewDesc("sleeper_held_requests",
			"Requests waiting for a wake right now.", byContainer, nil),
		asleep: prometheus.NewDesc("sleeper_asleep_seconds_total",
			"Seconds the container spent asleep since sleeper started.", byContainer, nil),
		configErrors: prometheus.NewDesc("sleeper_config_errors",
			"1 while the container's labels are broken and it is not managed.", byContainer, nil),
		active: prometheus.NewDesc("sleeper_active_connections",
			"Requests and upgraded or stream connections in progress.", byContainer, nil),
		lastActivity: prometheus.NewDesc("sleeper_last_activity_timestamp_seconds",
			"Unix time of the last request start or end.", byContainer, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.wakes
	ch <- c.requests
	ch <- c.held
	ch <- c.asleep
	ch <- c.configErrors
	ch <- c.active
	ch <- c.lastActivity
}

// snapshot is a series' state copied out under its lock.
type snapshot struct {
	state     watcher.State
	asleep    time.Duration
	broken    bool
	forgotten bool
	rare      []rareCount
}

type rareCount struct {
	rareKey
	n uint64
}

func (s *series) snapshot(now time.Time) snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{state: s.state, asleep: s.asleep, broken: s.broken, forgotten: !s.forgotten.IsZero()}
	for k, n := range s.rare {
		snap.rare = append(snap.rare, rareCount{k, n})
	}
	if s.state == watcher.StateAsleep {
		snap.asleep += max(0, now.Sub(s.since))
	}
	return snap
}

// Collect implements prometheus.Collector.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.r.now()
	var infos []watcher.Info
	if src := c.src.Load(); src != nil {
		infos = (*src).List()
	}
	// Containers the registry does not manage (a route conflict, a dependency
	// cycle) have no watcher even when their labels parse: they get no state.
	unmanaged := map[string]bool{}
	for _, info := range infos {
		if !info.Managed {
			unmanaged[info.Name] = true
		}
	}
	c.r.series.Range(func(name string, s *series) bool {
		snap := s.snapshot(now)
		if snap.forgotten {
			return true
		}
		c.collectCounts(ch, name, s, snap.rare)
		ch <- prometheus.MustNewConstMetric(c.configErrors, prometheus.GaugeValue, boolFloat(snap.broken), name)
		if snap.broken || unmanaged[name] {
			// No watcher, so no state of sleeper's: claiming "asleep" would
			// be a lie on an awake-vs-asleep panel.
			return true
		}
		for _, st := range watcher.States() {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue,
				boolFloat(st == snap.state), name, st.String())
		}
		ch <- prometheus.MustNewConstMetric(c.asleep, prometheus.CounterValue, snap.asleep.Seconds(), name)
		return true
	})
	for _, info := range infos {
		if !info.Managed {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(info.InFlight), info.Name)
		if !info.LastActivity.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastActivity, prometheus.GaugeValue,
				float64(info.LastActivity.UnixNano())/1e9, info.Name)
		}
	}
}

// collectCounts writes out a container's event counters and held gauge.
// They exist for every known container, managed or not, as the vectors they
// replace did.
func (c *scrapeCollector) collectCounts(ch chan<- prometheus.Metric, name string, s *series, rare []rareCount) {
	counter := func(desc *prometheus.Desc, n uint64, value string) {
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(desc, prometheus.CounterValue, float64(n), s.created, name, value)
	}
	for i, o := range outcomes {
		counter(c.requests, s.requests[i].Load(), o)
	}
	for i, res := range wakeResults {
		counter(c.wakes, s.wakes[i].Load(), res)
	}
	for _, rc := range rare {
		desc := c.requests
		if rc.wake {
			desc = c.wakes
		}
		counter(desc, rc.n, rc.value)
	}
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(s.held.Load()), name)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
