// Package metrics is the Prometheus implementation of watcher.Recorder.
//
// Ownership: a Recorder owns its own prometheus.Registry (never the global
// default one), built in main and served by the admin listener. Nothing here
// is package-level state.
//
// Policy: labels are bounded. The per-container labels are the container
// name and its engine (watcher.SplitKey of the key the watcher reports): the
// engine is "" with one engine, which PromQL reads as no label at all, so a
// one-engine sleeper's series are the ones it always had; with several
// engines it is the engine's name and container stays the plain name. IDs,
// paths and client addresses never become label values. Events
// (wakes, sleeps, requests) are counted as they happen; values that are state
// rather than events (the current state, active connections, last activity,
// time asleep) are computed when Prometheus scrapes, so they are always exact
// and cost nothing on the request path. Forget deletes every series of a
// container, and late calls for a forgotten container (a request that was
// still in flight when it went away) cannot bring its series back.
//
// Hot path: Request is one lock-free map load and one atomic add.
package metrics

import (
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/puzpuzpuz/xsync/v4"

	"sleeper/pkg/watcher"
)

// Label names. "container" and "engine" are per container: the name, and
// the engine among several ("" with one).
const (
	labelContainer = "container"
	labelEngine    = "engine"
	labelResult    = "result"
	labelMethod    = "method"
	labelReason    = "reason"
	labelState     = "state"
	labelOutcome   = "outcome"
)

// Request outcomes the proxy reports. Their counters exist from the
// container's first sighting, so rate() sees zeros rather than missing
// series, and are indexed, so Request builds no label values.
var outcomes = [...]string{"proxied", "loading_page", "held", "rejected", "error"}

// Wake results created up front for the same reason. The watcher may also
// report "cancelled" (sleeper shutting down); that series appears on first use.
var wakeResults = [...]string{"success", "timeout", "error"}

// wakeBuckets are the histogram buckets of sleeper_wake_duration_seconds:
// from an unpause (about 10 ms) to a slow JVM or database start (2 min).
var wakeBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}

// Source is what the scrape-time collector needs of the watcher registry:
// a point-in-time summary of every container (watcher.Registry has it).
type Source interface {
	List() []watcher.Info
}

// Config builds a Recorder.
type Config struct {
	// Version is reported by sleeper_build_info.
	Version string
	// Now is the clock; time.Now when nil. Tests set it to measure time asleep.
	Now func() time.Time
}

// Recorder records what watchers, the proxy and the reconciler do as
// Prometheus metrics. It is safe for concurrent use.
type Recorder struct {
	reg *prometheus.Registry
	now func() time.Time

	wakeDur   *prometheus.HistogramVec
	sleeps    *prometheus.CounterVec
	postponed *prometheus.CounterVec
	reconnect prometheus.Counter
	dockerUp  *prometheus.GaugeVec

	// series holds each container's counts and state; the scrape-time
	// collector writes out sleeper_wakes_total, sleeper_requests_total and
	// sleeper_held_requests from it.
	series *xsync.Map[string, *series]
	// scrape reads the registry when Prometheus scrapes; see Watch.
	scrape *scrapeCollector
}

var (
	_ watcher.Recorder       = (*Recorder)(nil)
	_ watcher.PolicyRecorder = (*Recorder)(nil)
)

// New returns a Recorder with its own registry, which also carries the Go
// and process collectors and sleeper_build_info.
func New(cfg Config) *Recorder {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	byContainer := []string{labelContainer, labelEngine}
	r := &Recorder{
		reg: prometheus.NewRegistry(),
		now: now,
		wakeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sleeper_wake_duration_seconds",
			Help:    "Duration of successful wakes, from the first request to ready.",
			Buckets: wakeBuckets,
		}, byContainer),
		sleeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sleeper_sleeps_total",
			Help: "Containers put to sleep, by stop method and reason (idle, api, external).",
		}, []string{labelContainer, labelEngine, labelMethod, labelReason}),
		postponed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sleeper_sleeps_postponed_total",
			Help: "Idle sleeps put off, by reason (schedule: inside a keep-warm window; busy: CPU above busy_cpu).",
		}, []string{labelContainer, labelEngine, labelReason}),
		reconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sleeper_docker_event_reconnects_total",
			Help: "Times the Docker event stream was re-established after a loss.",
		}),
		dockerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sleeper_docker_up",
			Help: "1 while the Docker engine answers, 0 before it first does and while it is unreachable.",
		}, []string{labelEngine}),
		series: xsync.NewMap[string, *series](),
	}
	r.scrape = newScrapeCollector(r)
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sleeper_build_info",
		Help:        "Always 1; the labels say which sleeper is running.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		r.wakeDur, r.sleeps, r.postponed, r.reconnect, r.dockerUp,
	)
	return r
}

// Registry returns the registry of the metrics that are not per-container
// state, for callers that want to add their own collectors. What /metrics
// serves is Gatherer's.
func (r *Recorder) Registry() *prometheus.Registry { return r.reg }

// Gatherer returns everything /metrics serves: the registry's families and
// the per-container ones computed at scrape time.
func (r *Recorder) Gatherer() prometheus.Gatherer { return gatherer{r.reg, r.scrape} }

// Handler returns the /metrics handler for the recorder's registry. Gather
// errors are logged and the metrics that could be gathered are still served.
func (r *Recorder) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(r.Gatherer(), promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Watch makes the scrape-time metrics that only the registry knows
// (sleeper_active_connections, sleeper_last_activity_timestamp_seconds) read
// src. The registry is built with the recorder, so it is handed over after.
func (r *Recorder) Watch(src Source) { r.scrape.src.Store(&src) }

// Reconnect counts a re-established Docker event stream. It fits
// watcher.ReconcilerConfig.OnReconnect.
func (r *Recorder) Reconnect() { r.reconnect.Inc() }

// DockerUp sets sleeper_docker_up of one engine ("" when it is the only
// one). main calls it with false for every engine at start, so that each
// engine's series is there, at 0, before the engine first answers.
func (r *Recorder) DockerUp(engine string, up bool) {
	r.dockerUp.WithLabelValues(engine).Set(boolFloat(up))
}

// Wakes returns how many times a container woke successfully since sleeper
// started, for the status page.
func (r *Recorder) Wakes(container string) uint64 {
	s, ok := r.series.Load(container)
	if !ok {
		return 0
	}
	return s.wakes[0].Load() // wakeResults[0] is "success"
}
