package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"sleeper/pkg/labels"
)

// wakeOp is one shared wake. Every client that arrives while it runs waits on
// done; err and dur are written once, before done is closed.
type wakeOp struct {
	start  time.Time
	done   chan struct{}
	err    error
	dur    time.Duration
	events []Event // guarded by the watcher's mu
}

// recentWakes is how many successful wake durations are kept for estimates.
const recentWakes = 10

// backoff bounds how often a container that keeps failing is started again.
func backoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := time.Second << min(failures-1, 6)
	return min(d, time.Minute)
}

// Kick starts the shared wake if the container is not ready and none runs,
// without waiting for it: the loading page answers at once and lets the
// browser follow the wake over SSE.
func (w *Watcher) Kick() { w.ensureWake() }

// RecentWakes returns the durations of the last successful wakes, oldest
// first, for the loading page's estimate.
func (w *Watcher) RecentWakes() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.recent...)
}

// ensureWake returns the wake in progress, starts one, or returns nil when
// the container is ready.
func (w *Watcher) ensureWake() *wakeOp {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.State() == StateReady {
		return nil
	}
	if w.wake != nil {
		return w.wake
	}
	if w.closed {
		return failedOp(&WakeError{Container: w.name, Err: ErrClosed})
	}
	if now := time.Now(); now.Before(w.retryAt) && w.lastWake != nil && w.lastWake.err != nil {
		// A container that crashes on every start is not restarted in a
		// loop: until retryAt every client gets the last failure at once.
		return w.lastWake
	}
	return w.startWakeLocked()
}

func failedOp(err error) *wakeOp {
	op := &wakeOp{start: time.Now(), done: make(chan struct{}), err: err}
	close(op.done)
	return op
}

// startWakeLocked starts the shared wake. Callers hold w.mu.
func (w *Watcher) startWakeLocked() *wakeOp {
	op := &wakeOp{start: time.Now(), done: make(chan struct{})}
	w.wake = op
	w.setStateLocked(StateWaking)
	w.emitLocked(op, EventWaking, "waking "+w.name)
	sleepDone := w.sleepDone
	w.wg.Add(1)
	go w.runWake(op, sleepDone)
	return op
}

// Progress returns the events of the wake in progress, or of the last one,
// and a channel closed at the next change.
func (w *Watcher) Progress() ([]Event, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	op := w.wake
	if op == nil {
		op = w.lastWake
	}
	if op == nil {
		return nil, w.changed
	}
	return append([]Event(nil), op.events...), w.changed
}

// emitLocked records a step of the wake. Callers hold w.mu.
func (w *Watcher) emitLocked(op *wakeOp, t EventType, msg string) {
	op.events = append(op.events, Event{Type: t, Time: time.Now(), Message: msg})
	w.broadcastLocked()
}

func (w *Watcher) emit(op *wakeOp, t EventType, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.emitLocked(op, t, msg)
}

func (w *Watcher) runWake(op *wakeOp, sleepDone <-chan struct{}) {
	defer w.wg.Done()
	spec := w.spec.Load()
	ctx, cancel := context.WithTimeoutCause(w.lifetime, wakeTimeout(spec), ErrWakeTimeout)
	defer cancel()
	var u *url.URL
	var err error
	w.wakeGroup(op)
	if sleepDone != nil {
		// A sleep is still stopping the container: let it finish, then start
		// it again, rather than racing the engine with a start and a stop.
		select {
		case <-sleepDone:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
	}
	if err == nil && w.graph != nil && len(spec.DependsOn) > 0 {
		err = w.graph.WakeDeps(ctx, w, func(t EventType, msg string) { w.emit(op, t, msg) })
	}
	if err == nil {
		u, err = w.bringUp(ctx, op, spec)
	}
	if err != nil && ctx.Err() != nil {
		err = context.Cause(ctx) // report the timeout, not the aborted call
	}
	w.finishWake(op, u, err)
}

// bringUp starts (or unpauses) the container and waits until it is ready.
func (w *Watcher) bringUp(ctx context.Context, op *wakeOp, spec *labels.Spec) (*url.URL, error) {
	id := w.ID()
	c, err := w.rt.Inspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	switch c.Status {
	case StatusRunning:
		// Already up (by hand, or left running): only readiness is checked.
	case StatusPaused:
		err := w.rt.Unpause(ctx, id)
		w.actionDone()
		if err != nil {
			return nil, fmt.Errorf("unpause: %w", err)
		}
		w.emit(op, EventStarted, "container unpaused")
		// A paused process kept its sockets: it is ready as soon as it runs.
		c, err = w.inspectObserve(ctx, id)
		if err != nil {
			return nil, err
		}
		if !c.Awake() {
			return nil, exitedError(c) // died while frozen, or at thaw
		}
		return ResolveUpstream(c, spec, w.selfNets)
	default:
		err := w.rt.Start(ctx, id)
		w.actionDone()
		if err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
		w.emit(op, EventStarted, "container started")
	}
	// Inspect after the start: published ports and IPs change on every start.
	c, err = w.inspectObserve(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Awake() {
		return nil, exitedError(c)
	}
	u, err := ResolveUpstream(c, spec, w.selfNets)
	if err != nil && hasHTTP(spec) {
		return nil, err
	}
	// A streams-only container needs no HTTP upstream: its stream ports
	// are resolved one by one by the stream server.
	w.emit(op, EventWaitingReady, readinessMessage(c, spec))
	return u, w.awaitReady(ctx, c, spec, u)
}

// inspectObserve inspects the container and records the result as an
// observation, so that later stale reports are recognised as such.
func (w *Watcher) inspectObserve(ctx context.Context, id string) (Container, error) {
	c, err := w.rt.Inspect(ctx, id)
	if err != nil {
		return c, fmt.Errorf("inspect: %w", err)
	}
	w.mu.Lock()
	if w.acceptLocked(c) {
		w.setObservedLocked(c)
	}
	w.mu.Unlock()
	return c, nil
}

func readinessMessage(c Container, spec *labels.Spec) string {
	switch readinessFor(c, spec, false).kind {
	case ReadyHealthURL, ReadyHealthExec, ReadyHealthEvent:
		return "waiting for the health check"
	case ReadyHTTP:
		return "waiting for the app to answer"
	case ReadyTCP:
		return "waiting for the port to open"
	default:
		return "container running"
	}
}

// hasHTTP reports whether the container speaks HTTP as far as sleeper
// knows: it has HTTP routes, a ready_path or an upstream. A container with
// none of those (a database that is only a dependency) is probed with a TCP
// dial: an HTTP probe would fail against a protocol that is not HTTP.
func hasHTTP(spec *labels.Spec) bool {
	return len(spec.Hosts) > 0 || len(spec.Listen) > 0 || spec.ReadyPath != "" || spec.Upstream != nil
}

// hasTCP reports whether a container without HTTP has a TCP port to dial:
// a TCP stream, or, with no streams at all, its target port. A UDP-only one
// cannot be probed generically: running is ready.
func hasTCP(spec *labels.Spec) bool {
	if len(spec.Streams) == 0 {
		return true
	}
	for _, s := range spec.Streams {
		if s.Protocol == labels.TCP {
			return true
		}
	}
	return false
}

func exitedError(c Container) error {
	return &ExitError{Code: c.ExitCode, Detail: c.Error}
}

// runDied reports whether the latest observation says the run that started
// at run has ended.
func (w *Watcher) runDied(id string, run time.Time) error {
	w.mu.Lock()
	o := w.observed
	w.mu.Unlock()
	if o.ID != id || !o.StartedAt.Equal(run) {
		return nil
	}
	if o.Status == StatusStopped || o.Status == StatusRestarting {
		return exitedError(o)
	}
	return nil
}

// awaitReady waits until the container is ready by its readiness rule (see
// readinessFor): the health check, followed at sleeper's own cadence where
// it can be, or a probe of the app. Either way it fails as soon as an
// observation says the container died.
func (w *Watcher) awaitReady(ctx context.Context, c Container, spec *labels.Spec, u *url.URL) error {
	_, canExec := w.rt.(Execer)
	r := readinessFor(c, spec, canExec)
	// A prober lives for one wake only: a thousand sleeping containers
	// should not each keep an HTTP client around.
	p := newProber()
	defer p.close()
	var probe func(context.Context) bool
	switch r.kind {
	case ReadyHealthURL, ReadyHealthExec, ReadyHealthEvent:
		probe, first, maxDelay := w.healthProbe(p, c, spec, r)
		if probe == nil {
			w.warnIntervalBound(c, spec, canExec)
		}
		return w.awaitHealth(ctx, c, probe, first, maxDelay)
	case ReadyHTTP:
		probe = p.http(u, r.path, probeHost(spec))
	case ReadyTCP:
		var bySockets bool
		probe, bySockets = p.tcp(c, spec, w.selfNets)
		w.log.Debug("probing the TCP port", "signal", tcpSignal(bySockets))
	default:
		return nil
	}
	delay := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		if err := w.runDied(c.ID, c.StartedAt); err != nil {
			return err
		}
		if probe(ctx) {
			return nil
		}
		changed := w.Changed()
		t.Reset(delay)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-changed:
			// An observation arrived: re-check whether the container died.
		case <-t.C:
		}
		// Probing is cheap on loopback and bounded to the wake: a tight,
		// capped interval keeps the added latency to a few milliseconds.
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// tcpSignal names what tells a TCP port ready, for the log.
func tcpSignal(bySockets bool) string {
	if bySockets {
		return "a listening socket in the container's network namespace"
	}
	return "a dial the proxy of a published port does not hang up"
}

// warnIntervalBound says once per container that its wakes wait for the
// engine's health check, whose first probe comes one interval after the
// start, and what would make them as fast as the app.
func (w *Watcher) warnIntervalBound(c Container, spec *labels.Spec, canExec bool) {
	if !w.intervalWarned.CompareAndSwap(false, true) {
		return
	}
	interval := defaultHCInterval
	if c.Check != nil && c.Check.Interval > 0 {
		interval = c.Check.Interval
	}
	fix := "set sleeper.ready_path to a path that answers once the app is ready, " +
		"or sleeper.health_exec=true to run the health test through the engine's exec API (needs exec permission)"
	if spec.HealthExec && !canExec {
		fix = "this runtime cannot exec; set sleeper.ready_path to a path that answers once the app is ready"
	}
	w.log.Warn("wake is bound by the health-check interval: the engine runs its first probe one interval after the start",
		"health_interval", interval.String(), "fix", fix)
}

// failWakeLocked records a failed wake and returns its result for the
// metrics. Callers hold w.mu.
func (w *Watcher) failWakeLocked(op *wakeOp, err error) (result string) {
	switch {
	case errors.Is(err, ErrWakeTimeout):
		result = "timeout"
	case errors.Is(err, context.Canceled):
		err = ErrClosed
		result = "cancelled"
	default:
		result = "error"
	}
	op.err = &WakeError{Container: w.name, Err: err}
	if !errors.Is(err, ErrWakeTimeout) && !errors.Is(err, ErrClosed) {
		w.failures++
		w.retryAt = time.Now().Add(backoff(w.failures))
	}
	w.setStateLocked(StateError)
	if w.observed.Awake() {
		// Running but not ready (a timeout): let the idle timer put it
		// back to sleep rather than leave it up forever. The failed
		// wake is activity: counted from the last request before the
		// nap, the timer would stop a slow app at once (and undo a
		// start by hand); this way the next request finds it further
		// along.
		w.lastActivity.Store(monoNow())
		w.armIdleLocked()
	} else {
		// Not running: what the wake started for it (unmanaged
		// dependencies) must not run on forever.
		w.releaseDepsLocked()
	}
	// Events are public (the loading page, SSE): they get the short
	// reason; the log gets the whole error.
	w.emitLocked(op, EventError, AnswerFor(err, wakeTimeout(w.spec.Load()), 0).Reason)
	w.log.Warn("wake failed", "error", err, "wake_ms", op.dur.Milliseconds(), "failures", w.failures)
	return result
}

// finishWake publishes the outcome of a wake to every waiting client.
func (w *Watcher) finishWake(op *wakeOp, u *url.URL, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	op.dur = time.Since(op.start)
	w.wake = nil
	w.lastWake = op
	result := "success"
	if err == nil {
		if len(w.recent) == recentWakes {
			w.recent = append(w.recent[:0], w.recent[1:]...)
		}
		w.recent = append(w.recent, op.dur)
		w.generation.Add(1)
		if u != nil {
			w.upstream.Store(u)
		}
		w.lastActivity.Store(monoNow())
		w.failures, w.retryAt = 0, time.Time{}
		w.setStateLocked(StateReady)
		w.armIdleLocked()
		w.emitLocked(op, EventReady, "ready")
		upstream := "(streams only)"
		if u != nil {
			upstream = u.String()
		}
		w.log.Info("awake", "wake_ms", op.dur.Milliseconds(), "upstream", upstream)
	} else {
		result = w.failWakeLocked(op, err)
	}
	close(op.done)
	w.rec.Wake(w.name, result, op.dur)
}
