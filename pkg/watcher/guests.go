package watcher

import (
	"context"
	"slices"
	"sync"

	"golang.org/x/sync/singleflight"

	"sleeper/pkg/labels"
)

func isStub(spec *labels.Spec) bool { return spec != nil && spec.Proxmox != nil }

// ObserveGuest inspects the Proxmox guest of a stub container and feeds the
// watcher; it does nothing for other containers. A failure is logged once
// per distinct reason and leaves the watcher as it was: a request still gets
// a wake, which fails with the reason.
func (r *Registry) ObserveGuest(ctx context.Context, name string) {
	r.mu.Lock()
	e := r.entries[name]
	if e == nil || e.w == nil || !isStub(e.spec) {
		r.mu.Unlock()
		return
	}
	w, rt, prev := e.w, e.w.rt, e.guestErr
	r.mu.Unlock()
	c, err := rt.Inspect(ctx, "")
	r.mu.Lock()
	if e := r.entries[name]; e != nil {
		e.guestErr = ""
		if err != nil {
			e.guestErr = err.Error()
		}
	}
	r.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && err.Error() != prev {
			r.log.Warn("proxmox guest not reachable", "container", name, "error", err)
		}
		return
	}
	w.Observe(c)
}

// GuestNames returns the stub containers that configure a Proxmox guest.
func (r *Registry) GuestNames(node string, vmid int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n, e := range r.entries {
		if isStub(e.spec) && e.spec.Proxmox.Node == node && e.spec.Proxmox.VMID == vmid {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// guestKey names one Proxmox guest.
type guestKey struct {
	node string
	vmid int
}

// sharedGuest is the runtime every stub of one guest is given, so that the
// stubs share the guest's power changes: concurrent starts (or stops) are
// one call, a start never overlaps a stop, and a start of a guest that is
// already up is no call at all.
type sharedGuest struct {
	Runtime
	mu      sync.Mutex // one power change at a time
	changes singleflight.Group
}

// Start implements Runtime: a stub waking while another stub's start runs
// joins that start.
func (g *sharedGuest) Start(ctx context.Context, id string) error {
	_, err, _ := g.changes.Do("start", func() (any, error) {
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
func (g *sharedGuest) Stop(ctx context.Context, id string, opt StopOptions) error {
	return g.powerOff(ctx, id, "stop", func() error { return g.Runtime.Stop(ctx, id, opt) })
}

// Kill implements Runtime, like Stop.
func (g *sharedGuest) Kill(ctx context.Context, id string, signal string) error {
	return g.powerOff(ctx, id, "kill", func() error { return g.Runtime.Kill(ctx, id, signal) })
}

// powerOff runs one stop or kill for every stub that asks at once, and
// none when the guest is already down (another stub's stop just ended).
func (g *sharedGuest) powerOff(ctx context.Context, id, op string, off func() error) error {
	_, err, _ := g.changes.Do(op, func() (any, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if c, err := g.Runtime.Inspect(ctx, id); err == nil && c.Status == StatusStopped {
			return nil, nil
		}
		return nil, off()
	})
	return err
}

// guestRuntimeLocked returns the shared runtime of a guest. Callers hold r.mu.
func (r *Registry) guestRuntimeLocked(node string, vmid int) Runtime {
	k := guestKey{node, vmid}
	g := r.guests[k]
	if g == nil {
		g = &sharedGuest{Runtime: r.cfg.Proxmox.For(node, vmid)}
		r.guests[k] = g
	}
	return g
}

// guestPeers lists, for each managed stub whose guest another managed stub
// also names, every stub of that guest (itself included), sorted by name.
func guestPeers(rt *Routes) map[string][]string {
	byGuest := map[guestKey][]string{}
	for n, w := range rt.ByName {
		if p := w.Spec().Proxmox; p != nil {
			k := guestKey{p.Node, p.VMID}
			byGuest[k] = append(byGuest[k], n)
		}
	}
	peers := map[string][]string{}
	for _, names := range byGuest {
		if len(names) < 2 {
			continue
		}
		slices.Sort(names)
		for _, n := range names {
			peers[n] = names
		}
	}
	return peers
}

// SleepTogether implements Graph: a stub whose guest other stubs also name
// does not sleep on its own. The guest sleeps only when every one of its
// stubs is idle, and then all of them go to sleep at once; this reports
// whether that is the case for the named container and, if so, tries it in
// the background. It reads the routes snapshot only: the caller holds its
// own lock.
func (r *Registry) SleepTogether(name string) bool {
	names := r.Routes().guestPeers[name]
	if len(names) < 2 {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sleepGuest(names)
	}()
	return true
}

// sleepGuest puts the stubs of one guest to sleep if every one is idle.
// It holds all their locks at once (taken in name order, so two tries
// cannot deadlock) and does for all of them what the idle timer does for
// one: publish Stopping, then read the requests in flight.
func (r *Registry) sleepGuest(names []string) {
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
