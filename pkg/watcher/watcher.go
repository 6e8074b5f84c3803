// Package watcher is sleeper's state machine: one Watcher per managed
// container, a Registry that routes names and hosts to them, and a Reconciler
// that keeps the registry in step with the engine.
//
// Ownership: the Reconciler owns the Registry's contents; the Registry owns
// its Watchers and closes them when their container goes away; a Watcher owns
// the goroutines of its wakes and sleeps and joins them in Close. A wake runs
// under the watcher's own lifetime, never under a client's request, so one
// impatient client cannot cancel it for the others.
//
// Hot path: a request to a ready container calls Acquire and Release, which
// are an atomic add, an atomic load and an atomic store. The idle timer is
// not reset per request; when it fires it compares the last activity time and
// re-arms itself for the remainder.
package watcher

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"sleeper/pkg/labels"
)

// epoch anchors activity times to the monotonic clock: storing nanoseconds
// since epoch keeps wall-clock jumps out of idle decisions.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

func monoTime(n int64) time.Time { return epoch.Add(time.Duration(n)) }

// Config builds a Watcher.
type Config struct {
	Name     string
	Spec     labels.Spec
	Runtime  Runtime
	Log      *slog.Logger
	Recorder Recorder
	// SelfNetworks are the networks sleeper's own container is attached to;
	// empty when sleeper runs on the host. See ResolveAddr.
	SelfNetworks []string
	// Graph wakes dependencies and says when dependents are awake; nil for
	// a watcher on its own.
	Graph Graph
	// Provider names the provider of the workload for the API.
	Provider string
	// Workload is the Target.Key of the workload a stub container stands
	// for; "" when the container is its own workload.
	Workload string
	// Location is the time zone of keep-warm windows (--timezone); nil
	// means the process's. Now is the wall clock for them; nil means
	// time.Now (tests set a fake one).
	Location *time.Location
	Now      func() time.Time
}

// Watcher drives one container between asleep and ready.
type Watcher struct {
	name     string
	rt       Runtime
	log      *slog.Logger
	rec      Recorder
	selfNets []string
	graph    Graph
	provider string
	workload string // Config.Workload

	// Read on every request without a lock.
	state    atomic.Int32
	inflight atomic.Int64
	held     atomic.Int64
	// heldMu orders the held gauge's reports: two waiters leaving at once
	// must not report 1 after 0. Only waiters take it, never the hot path.
	heldMu       sync.Mutex
	lastActivity atomic.Int64 // monoNow() of the last request start or end
	upstream     atomic.Pointer[url.URL]
	spec         atomic.Pointer[labels.Spec]
	running      atomic.Bool   // the last observation says the container runs
	generation   atomic.Uint64 // successful wakes so far
	// intervalWarned is set once the "bound by the health-check interval"
	// warning has been logged for this container.
	intervalWarned atomic.Bool

	// lifetime is the watcher's own context: wakes and sleeps run under it
	// and Close cancels it. It is the one context kept in a struct, because it
	// is not a request's but the watcher's.
	lifetime context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu         sync.Mutex
	id         string
	observed   Container
	wake       *wakeOp       // the wake in progress, nil when none
	lastWake   *wakeOp       // the most recent finished wake
	sleepDone  chan struct{} // closed when the sleep in progress ends; nil when none
	sleepErr   error         // how the last sleep ended
	timer      *time.Timer
	changed    chan struct{}   // closed and replaced on every change
	recent     []time.Duration // durations of the last successful wakes
	lastAction time.Time       // when our last start, stop or pause returned
	failures   int             // consecutive failed wakes, for the crash backoff
	// healthPassed is the run whose health test sleeper saw pass itself
	// (the engine may still say starting), for ":healthy" dependents.
	healthPassed runKey
	retryAt      time.Time // no new wake before this after a failure
	closed       bool
	pol          policy // keep-warm windows, busy guard, memory freed
}

// New builds a watcher for one container. It starts in StateAsleep and
// learns the truth from its first Observe.
func New(cfg Config) *Watcher {
	rec := cfg.Recorder
	if rec == nil {
		rec = NopRecorder{}
	}
	lifetime, cancel := context.WithCancel(context.Background())
	w := &Watcher{
		name:     cfg.Name,
		rt:       cfg.Runtime,
		log:      cfg.Log.With("container", cfg.Name),
		rec:      rec,
		selfNets: cfg.SelfNetworks,
		graph:    cfg.Graph,
		provider: cfg.Provider,
		workload: cfg.Workload,
		lifetime: lifetime,
		cancel:   cancel,
		changed:  make(chan struct{}),
		pol:      newPolicy(cfg),
	}
	spec := cfg.Spec
	w.spec.Store(&spec)
	w.armWindowLocked() // nobody else holds w yet
	w.lastActivity.Store(monoNow())
	// A watcher rebuilt under a name the recorder knows starts from asleep.
	rec.State(cfg.Name, StateAsleep, StateAsleep)
	return w
}

// Name returns the container name the watcher is keyed by.
func (w *Watcher) Name() string { return w.name }

// SelfNetworks returns the networks sleeper's own container shares on the
// container's engine (Config.SelfNetworks), for front doors that dial it
// themselves: another engine's networks are never this container's.
func (w *Watcher) SelfNetworks() []string { return w.selfNets }

// ID returns the current container ID (it changes when the container is recreated).
func (w *Watcher) ID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

// Spec returns the container's parsed labels. The result must not be modified.
func (w *Watcher) Spec() *labels.Spec { return w.spec.Load() }

// State returns the current state.
func (w *Watcher) State() State { return State(w.state.Load()) }

// Generation counts successful wakes: a new value means addresses may have
// changed (published ports and IPs are new on every start).
func (w *Watcher) Generation() uint64 { return w.generation.Load() }

// Upstream returns where requests go, or nil before the first resolution.
func (w *Watcher) Upstream() *url.URL { return w.upstream.Load() }

// Acquire marks a request as started. It returns true when the container is
// ready; the caller must then call Release when the request (including an
// upgraded connection) ends. On false nothing is held and the caller should
// Wait. This is the hot path: no lock, no allocation, no timer.
func (w *Watcher) Acquire() bool {
	// Count first, then read the state: the idle timer does the mirror image
	// (set Stopping, then read the count), so at least one of the two sees
	// the other and a request never runs into a container going to sleep.
	w.inflight.Add(1)
	if State(w.state.Load()) == StateReady {
		// No activity stamp here: while the count is above zero the idle
		// check treats the container as busy, and Release stamps the end.
		return true
	}
	w.inflight.Add(-1)
	return false
}

// Release marks a request acquired with Acquire as finished.
func (w *Watcher) Release() {
	w.stamp()
	w.inflight.Add(-1)
}

// ReleaseQuiet ends a request acquired with Acquire without recording
// activity: an ignored request (an uptime monitor) still keeps the container
// from sleeping under it, but its end does not push the idle time back.
func (w *Watcher) ReleaseQuiet() { w.inflight.Add(-1) }

// stamp records activity now. Under load many requests end in the same
// millisecond: reading first and skipping the store keeps the cache line
// shared between cores instead of bouncing it on every request.
func (w *Watcher) stamp() {
	now := monoNow()
	if now-w.lastActivity.Load() > int64(time.Millisecond) {
		w.lastActivity.Store(now)
	}
}

// Touch records activity without a request, for bytes on long-lived streams.
func (w *Watcher) Touch() { w.stamp() }

// InFlight returns the number of requests and connections in progress.
func (w *Watcher) InFlight() int64 { return w.inflight.Load() }

// AddHeld adjusts the number of requests waiting for a wake and returns the new count.
func (w *Watcher) AddHeld(n int64) int64 {
	w.heldMu.Lock()
	defer w.heldMu.Unlock()
	v := w.held.Add(n)
	w.rec.Held(w.name, int(v))
	return v
}

// LastActivity returns when the last request started or ended.
func (w *Watcher) LastActivity() time.Time { return monoTime(w.lastActivity.Load()) }

// Changed returns a channel closed at the next change of state or progress.
func (w *Watcher) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// broadcastLocked wakes everyone waiting on Changed. Callers hold w.mu.
func (w *Watcher) broadcastLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// setStateLocked moves to a new state and tells the recorder. Callers hold w.mu.
func (w *Watcher) setStateLocked(to State) {
	from := State(w.state.Swap(int32(to)))
	if from != to {
		w.rec.State(w.name, from, to)
		w.log.Debug("state", "from", from.String(), "to", to.String())
	}
}

// Update replaces the spec after the container's labels changed (a recreate).
func (w *Watcher) Update(spec labels.Spec) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spec.Store(&spec)
	if w.State() == StateReady {
		w.armIdleLocked()
	}
	w.armWindowLocked()
	w.broadcastLocked()
}

// Observe feeds the watcher a freshly inspected state of its container. It is
// level-triggered: the same observation twice changes nothing.
func (w *Watcher) Observe(c Container) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || !w.acceptLocked(c) {
		return
	}
	w.id = c.ID
	w.setObservedLocked(c)
	switch st := w.State(); {
	case c.Awake() && (st == StateAsleep || st == StateError) && w.wake == nil && w.sleepDone == nil:
		// Running without our doing: started by hand, or already up when
		// sleeper started. Nothing is started; the wake only checks readiness
		// and then arms a fresh idle timer.
		w.failures, w.retryAt = 0, time.Time{}
		w.startWakeLocked()
	case c.Awake() && st == StateReady:
		// Store only a changed address: the proxy caches per upstream value.
		if u, err := ResolveUpstream(c, w.spec.Load(), w.selfNets); err == nil {
			if old := w.upstream.Load(); old == nil || old.String() != u.String() {
				w.upstream.Store(u)
			}
		}
	case !c.Awake() && st == StateReady:
		// Stopped or paused by hand: simply asleep.
		w.stopTimerLocked()
		w.setStateLocked(StateAsleep)
		w.rec.Sleep(w.name, "", "external")
		w.log.Info("container went to sleep outside sleeper", "status", string(c.Status))
		w.releaseDepsLocked()
	}
	w.broadcastLocked()
}

// setObservedLocked records an observation. Callers hold w.mu.
func (w *Watcher) setObservedLocked(c Container) {
	if o := w.observed; c.Listed && c.ID == o.ID && !o.Listed {
		// A list entry of the container an inspect already read: what its
		// configuration fixes for its life is still known.
		c.Check, c.StopSignal, c.Listed = o.Check, o.StopSignal, false
	}
	w.observed = c
	w.running.Store(c.Awake())
}

// Awake reports whether the container is up or coming up, as far as its
// dependencies are concerned: anything but asleep, and not a failed wake
// that left the container stopped. It takes no lock.
func (w *Watcher) Awake() bool {
	switch w.State() {
	case StateAsleep:
		return false
	case StateError:
		return w.running.Load()
	default:
		return true
	}
}

// releaseDepsLocked tells the graph this container sleeps now, in the
// background (stopping an unmanaged dependency takes a while). Callers hold w.mu.
func (w *Watcher) releaseDepsLocked() {
	if w.graph == nil || len(w.spec.Load().DependsOn) == 0 || w.closed {
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		ctx, cancel := context.WithTimeout(w.lifetime, time.Minute)
		defer cancel()
		w.graph.Released(ctx, w.name)
	}()
}

// acceptLocked drops observations older than the one the watcher has: a
// reconcile that inspected before our own start may report after it.
func (w *Watcher) acceptLocked(c Container) bool {
	o := w.observed
	if c.ID == o.ID && !c.InspectedAt.IsZero() && c.InspectedAt.Before(w.lastAction) {
		// Begun before our own start or stop finished: it may show either
		// side of it. The event that follows brings a fresh one. (Another
		// container under the name, a recreate, is news whatever its age.)
		return false
	}
	if o.ID == "" || o.ID != c.ID {
		return true
	}
	if c.StartedAt.IsZero() && !c.InspectedAt.IsZero() {
		// No start time to order by (the engine's list does not give it, or
		// the container never ran): the newer observation wins.
		return !c.InspectedAt.Before(o.InspectedAt)
	}
	if c.StartedAt.Before(o.StartedAt) {
		return false
	}
	return !(c.StartedAt.Equal(o.StartedAt) && c.FinishedAt.Before(o.FinishedAt))
}

// Observed returns the last observed state of the container.
func (w *Watcher) Observed() Container {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.observed
}

// Close stops the watcher: no more wakes or sleeps start, the ones running
// are cancelled and joined. The container is left exactly as it is.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.stopTimerLocked()
	w.stopWindowLocked()
	w.cancel()
	w.broadcastLocked()
	w.mu.Unlock()
	w.wg.Wait()
}

// Info is a point-in-time summary of a watcher, for the API and status page.
type Info struct {
	Name         string
	ID           string
	Provider     string // the provider's name (Target.Provider, RegistryConfig.Provider)
	State        State
	Hosts        []string
	HostSources  []labels.HostSource // Hosts with where each was found
	IdleTimeout  time.Duration
	LastActivity time.Time
	SleepsAt     time.Time // zero when it will not sleep on its own
	LastWake     time.Duration
	InFlight     int64
	Held         int64
	Managed      bool // false for a container with bad labels or a route conflict
	// Error is the full error, for the operator (admin API, log).
	Error string
	// Reason is Error's short public form (Answer.Reason), for what anyone
	// who reaches a routed host may read; "" when Error is.
	Reason string
	// Readiness is the rule that decides when a wake is done, as shown to
	// users: "http /alive", "healthcheck-url http://localhost/health",
	// "healthcheck-exec", "healthcheck-event", "http", "tcp" or "running".
	Readiness string
	// Group is the sleeper.group; "" when none.
	Group string
	// AwakeDuring is the keep-warm schedule, normalised; "" when none.
	// NextWindow is the start of the next window (zero without one), and
	// InWindow says whether now is inside one (then SleepsAt is zero).
	AwakeDuring string
	NextWindow  time.Time
	InWindow    bool
	// BusyCPU is the busy guard's threshold in percent; 0 when none.
	BusyCPU float64
	// MemoryFreed is, for a container asleep, its memory use read just
	// before it was stopped (0 unknown, or paused: pause frees nothing).
	MemoryFreed uint64
}

// Info returns a summary of the watcher.
func (w *Watcher) Info() Info {
	w.mu.Lock()
	defer w.mu.Unlock()
	spec := w.spec.Load()
	info := Info{
		Name:         w.name,
		ID:           w.id,
		Provider:     w.provider,
		State:        w.State(),
		Hosts:        spec.Hosts,
		HostSources:  spec.HostSources,
		IdleTimeout:  spec.IdleTimeout,
		LastActivity: w.LastActivity(),
		InFlight:     w.inflight.Load(),
		Held:         w.held.Load(),
		Managed:      true,
	}
	_, canExec := w.rt.(Execer)
	info.Readiness = readinessFor(w.observed, spec, canExec).String()
	if w.observed.Listed && spec.ReadyPath == "" {
		// Discovery reads the engine's list, which does not carry the
		// health check: the first wake's inspect does.
		info.Readiness += " (health check read at the first wake)"
	}
	// A dependency kept up by its dependents has no sleep time of its own
	// to show; neither has a container with a request or stream open.
	busy := info.InFlight > 0 || (w.graph != nil && w.graph.DependentsAwake(w.name))
	if info.State == StateReady && spec.IdleTimeout > 0 && !busy {
		info.SleepsAt = info.LastActivity.Add(spec.IdleTimeout)
	}
	w.policyInfoLocked(&info)
	if w.lastWake != nil {
		info.LastWake = w.lastWake.dur
		if w.lastWake.err != nil && info.State == StateError {
			info.Error = w.lastWake.err.Error()
			info.Reason = AnswerFor(w.lastWake.err, wakeTimeout(spec), 0).Reason
		}
	}
	return info
}

// actionDone records that a start, stop or pause of ours has returned.
func (w *Watcher) actionDone() {
	w.mu.Lock()
	w.lastAction = time.Now()
	w.mu.Unlock()
}
