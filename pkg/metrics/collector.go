package metrics

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"sleeper/pkg/watcher"
)

// scrapeCollector computes, at scrape time, the per-container metrics: the
// values that are state rather than events, and the event counts the
// recorder keeps as atomics. Doing it here instead of on every change keeps
// the request path free of metric writes and makes a one-hot state gauge
// exact by construction.
//
// It builds the protobuf families itself instead of going through
// prometheus.Collector: a thousand containers make some 17,000 series, and
// const metrics cost each a fresh pair of label pairs, a consistency hash
// and a copy, about 8.9 MB of garbage per gather (TestMemoryBounds). Here
// a series costs its dto.Metric and value; label pairs are shared, the
// container's within the scrape and the fixed values' for good. Nothing
// modifies a gathered family, so sharing is safe.
type scrapeCollector struct {
	r   *Recorder
	src atomic.Pointer[Source] // nil until Watch

	container, engine      string // the label names, addressable
	state, result, outcome string
	// Label pairs of the fixed label values, shared by every scrape.
	stateLP   []*dto.LabelPair // by watcher.State
	resultLP  []*dto.LabelPair // by wakeResults index
	outcomeLP []*dto.LabelPair // by outcomes index
}

// family is one metric family's name, help and type.
type family struct {
	name, help string
	typ        dto.MetricType
}

// The scrape-time families, in the order their help text was first written.
var (
	famState = family{"sleeper_container_state",
		"1 for the container's current state, 0 for the others.", dto.MetricType_GAUGE}
	famWakes = family{"sleeper_wakes_total",
		"Finished wakes by result (success, timeout, error, cancelled).", dto.MetricType_COUNTER}
	famRequests = family{"sleeper_requests_total",
		"HTTP requests by outcome (proxied, loading_page, held, rejected, error).", dto.MetricType_COUNTER}
	famHeld = family{"sleeper_held_requests",
		"Requests waiting for a wake right now.", dto.MetricType_GAUGE}
	famAsleep = family{"sleeper_asleep_seconds_total",
		"Seconds the container spent asleep since sleeper started.", dto.MetricType_COUNTER}
	famConfigErrors = family{"sleeper_config_errors",
		"1 while the container's labels are broken and it is not managed.", dto.MetricType_GAUGE}
	famActive = family{"sleeper_active_connections",
		"Requests and upgraded or stream connections in progress.", dto.MetricType_GAUGE}
	famLastActivity = family{"sleeper_last_activity_timestamp_seconds",
		"Unix time of the last request start or end.", dto.MetricType_GAUGE}
	famMemoryFreed = family{"sleeper_memory_freed_bytes",
		"Memory a sleeping container used just before it was stopped, freed while it sleeps; 0 while awake or paused. sum() is the total freed.", dto.MetricType_GAUGE}
)

func newScrapeCollector(r *Recorder) *scrapeCollector {
	c := &scrapeCollector{r: r, container: labelContainer, engine: labelEngine, state: labelState, result: labelResult, outcome: labelOutcome}
	for _, st := range watcher.States() {
		c.stateLP = append(c.stateLP, &dto.LabelPair{Name: &c.state, Value: proto.String(st.String())})
	}
	for _, res := range wakeResults {
		c.resultLP = append(c.resultLP, &dto.LabelPair{Name: &c.result, Value: proto.String(res)})
	}
	for _, o := range outcomes {
		c.outcomeLP = append(c.outcomeLP, &dto.LabelPair{Name: &c.outcome, Value: proto.String(o)})
	}
	return c
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

// builder accumulates the scrape-time families of one scrape.
type builder struct {
	fams map[string]*dto.MetricFamily
}

// add appends one series to its family, labelled with the container's
// pairs and, unless nil, one fixed pair after them. created is nil for
// gauges and for counters without a created timestamp.
func (b *builder) add(f family, v float64, created *timestamppb.Timestamp, lp []*dto.LabelPair, fixed *dto.LabelPair) {
	mf := b.fams[f.name]
	if mf == nil {
		mf = &dto.MetricFamily{Name: proto.String(f.name), Help: proto.String(f.help), Type: f.typ.Enum()}
		b.fams[f.name] = mf
	}
	labels := lp
	if fixed != nil {
		labels = append(lp[:len(lp):len(lp)], fixed)
	}
	m := &dto.Metric{Label: labels}
	if f.typ == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: &v, CreatedTimestamp: created}
	} else {
		m.Gauge = &dto.Gauge{Value: &v}
	}
	mf.Metric = append(mf.Metric, m)
}

// families returns the scrape-time families, each sorted as a registry sorts
// them (by label values), so the text is the same as a collector's.
func (c *scrapeCollector) families() []*dto.MetricFamily {
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
	b := &builder{fams: map[string]*dto.MetricFamily{}}
	c.r.series.Range(func(name string, s *series) bool {
		snap := s.snapshot(now)
		if snap.forgotten {
			return true
		}
		lp := c.containerLP(name)
		c.addCounts(b, lp, s, snap.rare)
		b.add(famConfigErrors, boolFloat(snap.broken), nil, lp, nil)
		if snap.broken || unmanaged[name] {
			// No watcher, so no state of sleeper's: claiming "asleep" would
			// be a lie on an awake-vs-asleep panel.
			return true
		}
		for _, st := range watcher.States() {
			b.add(famState, boolFloat(st == snap.state), nil, lp, c.stateLP[st])
		}
		b.add(famAsleep, snap.asleep.Seconds(), nil, lp, nil)
		return true
	})
	for _, info := range infos {
		if !info.Managed {
			continue
		}
		lp := c.containerLP(info.Name)
		b.add(famActive, float64(info.InFlight), nil, lp, nil)
		b.add(famMemoryFreed, float64(info.MemoryFreed), nil, lp, nil)
		if !info.LastActivity.IsZero() {
			b.add(famLastActivity, float64(info.LastActivity.UnixNano())/1e9, nil, lp, nil)
		}
	}
	out := make([]*dto.MetricFamily, 0, len(b.fams))
	for _, mf := range b.fams {
		slices.SortFunc(mf.Metric, compareLabelValues)
		out = append(out, mf)
	}
	return out
}

// containerLP returns the container and engine label pairs of a key, in
// the order a registry sorts label names (container, engine, then the
// fixed ones).
func (c *scrapeCollector) containerLP(key string) []*dto.LabelPair {
	engine, name := watcher.SplitKey(key)
	return []*dto.LabelPair{{Name: &c.container, Value: &name}, {Name: &c.engine, Value: &engine}}
}

// addCounts adds a container's event counters and held gauge. They exist
// for every known container, managed or not, as the vectors they replace did.
func (c *scrapeCollector) addCounts(b *builder, lp []*dto.LabelPair, s *series, rare []rareCount) {
	created := timestamppb.New(s.created)
	for i := range outcomes {
		b.add(famRequests, float64(s.requests[i].Load()), created, lp, c.outcomeLP[i])
	}
	for i := range wakeResults {
		b.add(famWakes, float64(s.wakes[i].Load()), created, lp, c.resultLP[i])
	}
	for _, rc := range rare {
		f, name := famRequests, &c.outcome
		if rc.wake {
			f, name = famWakes, &c.result
		}
		b.add(f, float64(rc.n), created, lp, &dto.LabelPair{Name: name, Value: proto.String(rc.value)})
	}
	b.add(famHeld, float64(s.held.Load()), nil, lp, nil)
}

// compareLabelValues orders series of one family by their label values, as
// the registry does: every series of a family has the same label names.
func compareLabelValues(a, b *dto.Metric) int {
	for i := range min(len(a.Label), len(b.Label)) {
		if c := cmp.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Label), len(b.Label))
}

// gatherer is what /metrics serves: the registry's families and the
// scrape-time ones, sorted by name as a registry's are.
type gatherer struct {
	reg    *prometheus.Registry
	scrape *scrapeCollector
}

// Gather implements prometheus.Gatherer.
func (g gatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.reg.Gather()
	mfs = append(mfs, g.scrape.families()...)
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return mfs, err
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
