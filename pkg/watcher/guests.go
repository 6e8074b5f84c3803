package watcher

import (
	"context"
	"slices"
	"sync"

	"golang.org/x/sync/singleflight"
)

// ObserveStub inspects the workload behind a stub container and feeds the
// watcher; it does nothing for other containers. A failure is logged once
// per distinct reason and leaves the watcher as it was: a request still gets
// a wake, which fails with the reason.
func (r *Registry) ObserveStub(ctx context.Context, name string) {
	r.mu.Lock()
	e := r.entries[name]
	if e == nil || e.w == nil || e.target == nil {
		r.mu.Unlock()
		return
	}
	w, rt, prev, provider := e.w, e.w.rt, e.targetErr, e.target.Provider
	r.mu.Unlock()
	c, err := rt.Inspect(ctx, "")
	r.mu.Lock()
	if e := r.entries[name]; e != nil {
		e.targetErr = ""
		if err != nil {
			e.targetErr = err.Error()
		}
	}
	r.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && err.Error() != prev {
			r.log.Warn("stub's workload not reachable", "container", name, "provider", provider, "error", err)
		}
		return
	}
	w.Observe(c)
}

// StubNames returns the stub containers that stand for the workload with
// this Target.Key, sorted.
func (r *Registry) StubNames(key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n, e := range r.entries {
		if e.target != nil && e.target.Key == key {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// sharedRuntime is the runtime every stub of one workload is given, so that
// the stubs share the workload's power changes: concurrent starts (or stops)
// are one call, a start never overlaps a stop, and a start of a workload
// that is already up is no call at all.
type sharedRuntime struct {
	Runtime
	mu      sync.Mutex // one power change at a time
	changes singleflight.Group
}

// Start implements Runtime: a stub waking while another stub's start runs
// joins that start.
func (g *sharedRuntime) Start(ctx context.Context, id string) error {
	_, err, _ := g.changes.Do("start", func() (any, error) {
		ctx, cancel := detach(ctx)
		defer cancel()
		g.mu.Lock()
		defer g.mu.Unlock()
		// Another stub's start may have ended since this stub inspected.
		if c, err := g.Runtime.Inspect(ctx, id); err == nil && c.Awake() {
			return nil, nil
		}
		return nil, g.Runtime.Start(ctx, id)
	})
	return err
}

// Stop implements Runtime: stubs that sleep together stop the guest once.
func (g *sharedRuntime) Stop(ctx context.Context, id string, opt StopOptions) error {
	return g.powerOff(ctx, id, "stop", func(ctx context.Context) error { return g.Runtime.Stop(ctx, id, opt) })
}

// Kill implements Runtime, like Stop.
func (g *sharedRuntime) Kill(ctx context.Context, id string, signal string) error {
	return g.powerOff(ctx, id, "kill", func(ctx context.Context) error { return g.Runtime.Kill(ctx, id, signal) })
}

// powerOff runs one stop or kill for every stub that asks at once, and
// none when the guest is already down (another stub's stop just ended).
func (g *sharedRuntime) powerOff(ctx context.Context, id, op string, off func(context.Context) error) error {
	_, err, _ := g.changes.Do(op, func() (any, error) {
		ctx, cancel := detach(ctx)
		defer cancel()
		g.mu.Lock()
		defer g.mu.Unlock()
		if c, err := g.Runtime.Inspect(ctx, id); err == nil && c.Status == StatusStopped {
			return nil, nil
		}
		return nil, off(ctx)
	})
	return err
}

// detach returns the context of a power change several stubs share: it
// keeps the first caller's deadline (the wake or stop timeout) but not its
// cancellation, so the stub that happened to ask first cannot cancel the
// change for the others by going away.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	shared := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(shared, deadline)
	}
	return context.WithCancel(shared)
}

// sharedStats is a sharedRuntime whose workload's runtime reads resource
// use: the busy guard and the memory freed find Stats by a type assertion,
// which the embedded Runtime interface alone would hide.
type sharedStats struct {
	*sharedRuntime
	stats Stats
}

// Stats implements Stats: a read only, no power change to share.
func (g sharedStats) Stats(ctx context.Context, id string, cpu bool) (Usage, error) {
	return g.stats.Stats(ctx, id, cpu)
}

// sharedRuntimeLocked returns the runtime the stubs of t's workload share,
// with Stats when t's runtime has it. Callers hold r.mu.
func (r *Registry) sharedRuntimeLocked(t Target) Runtime {
	g := r.shared[t.Key]
	if g == nil {
		g = &sharedRuntime{Runtime: t.Runtime}
		r.shared[t.Key] = g
	}
	if s, ok := g.Runtime.(Stats); ok {
		return sharedStats{g, s}
	}
	return g
}

// sharedPeers lists, for each managed stub whose workload another managed
// stub also names, every stub of that workload (itself included), sorted.
func sharedPeers(rt *Routes) map[string][]string {
	return peersBy(rt, func(w *Watcher) string { return w.workload })
}

// SleepTogether implements Graph: a stub whose guest other stubs also name
// does not sleep on its own. The guest sleeps only when every one of its
// stubs is idle, and then all of them go to sleep at once; this reports
// whether that is the case for the named container and, if so, tries it in
// the background. It reads the routes snapshot only: the caller holds its
// own lock.
func (r *Registry) SleepTogether(name string) bool {
	names := r.Routes().peers[name]
	if len(names) < 2 {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sleepShared(names)
	}()
	return true
}

// sleepShared puts the stubs of one workload to sleep if every one is idle.
// It holds all their locks at once (taken in name order, so two tries
// cannot deadlock) and does for all of them what the idle timer does for
// one: publish Stopping, then read the requests in flight.
func (r *Registry) sleepShared(names []string) {
	rt := r.Routes()
	var ws []*Watcher
	for _, n := range names {
		if w := rt.ByName[n]; w != nil {
			ws = append(ws, w)
		}
	}
	for _, w := range ws {
		w.mu.Lock()
		defer w.mu.Unlock()
	}
	var sleepers []*Watcher
	for _, w := range ws {
		switch w.peerIdleLocked() {
		case peerBusy:
			return // its own idle timer tries again
		case peerSleepable:
			sleepers = append(sleepers, w)
		}
	}
	prev := make([]State, len(sleepers))
	for i, w := range sleepers {
		prev[i] = w.State()
		w.setStateLocked(StateStopping)
	}
	for _, w := range sleepers {
		if w.inflight.Load() > 0 {
			for i, v := range sleepers {
				v.setStateLocked(prev[i])
			}
			return
		}
	}
	for _, w := range sleepers {
		w.startSleepLocked("idle")
		w.broadcastLocked()
	}
}

// peerState is where a stub stands when its guest may go to sleep.
type peerState int

const (
	peerOut       peerState = iota // asleep, going to sleep or closed: no say
	peerBusy                       // keeps the guest up
	peerSleepable                  // awake and idle
)

// peerIdleLocked reports whether this stub keeps its guest up. Callers hold w.mu.
func (w *Watcher) peerIdleLocked() peerState {
	st := w.State()
	switch {
	case w.closed || st == StateAsleep || st == StateStopping || (st == StateError && !w.observed.Awake()):
		return peerOut
	case st == StateWaking || w.wake != nil:
		return peerBusy
	}
	idle := w.spec.Load().IdleTimeout
	if idle <= 0 || w.inflight.Load() > 0 || monoNow()-w.lastActivity.Load() < int64(idle) {
		return peerBusy
	}
	if w.graph != nil && w.graph.DependentsAwake(w.name) {
		return peerBusy
	}
	if _, in := w.inWindowLocked(); in || w.busyLocked() {
		return peerBusy // a keep-warm window, or no fresh quiet CPU reading
	}
	return peerSleepable
}

// CreditsWorkload implements Graph: of the managed stubs of one workload,
// the first by name is credited with what the workload frees; a container
// that is its own workload always is.
func (r *Registry) CreditsWorkload(name string) bool {
	rt := r.Routes()
	w := rt.ByName[name]
	if w == nil || w.workload == "" {
		return true
	}
	for n, o := range rt.ByName {
		if o.workload == w.workload && n < name {
			return false
		}
	}
	return true
}
