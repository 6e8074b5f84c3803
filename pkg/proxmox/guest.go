package proxmox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"sleeper/pkg/watcher"
)

// Guest is the watcher.Runtime of one guest, LXC or QEMU VM, made by
// Runtime.For. Its type and the node it is on are found in the cluster's
// resource list at its first call, and followed when PVE says it moved.
// Its methods ignore the container ID they are given. Every method is
// idempotent: starting a running guest or stopping a stopped one succeeds.
type Guest struct {
	rt    *Runtime
	label string // the node the stub's label names: where to look first
	vmid  int
	log   *slog.Logger

	mu   sync.Mutex
	node string // where the guest is, as last found
	kind string // TypeLXC or TypeQEMU; "" until found
}

// Node returns the PVE node the guest was last found on.
func (g *Guest) Node() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.node
}

// VMID returns the guest's id.
func (g *Guest) VMID() int { return g.vmid }

// ID returns the ID Inspect reports: GuestID of the label's node, so that
// it stays the same when the guest moves.
func (g *Guest) ID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kind == TypeQEMU {
		return VMID(g.label, g.vmid)
	}
	return GuestID(g.label, g.vmid)
}

// guestError names the guest in front of a client error and lets the
// watcher's own ErrNotFound match a guest that does not exist.
type guestError struct {
	kind string
	node string
	vmid int
	step string // "" when the wrapped error says it already
	err  error
}

func (e *guestError) Error() string {
	what := "lxc"
	if e.kind == TypeQEMU {
		what = "vm"
	}
	if e.step == "" {
		return fmt.Sprintf("%s %d on %s: %v", what, e.vmid, e.node, e.err)
	}
	return fmt.Sprintf("%s %d on %s: %s: %v", what, e.vmid, e.node, e.step, e.err)
}

func (e *guestError) Unwrap() error { return e.err }

func (e *guestError) Is(target error) bool {
	return target == watcher.ErrNotFound && errors.Is(e.err, ErrNotFound)
}

func (g *Guest) wrap(step string, err error) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return err // names the container and label already
	}
	g.mu.Lock()
	kind, node := g.kind, g.node
	g.mu.Unlock()
	if node == "" {
		node = g.label
	}
	return &guestError{kind: kind, node: node, vmid: g.vmid, step: step, err: err}
}

// Start starts the guest (resumes a paused VM, restores a hibernated one)
// and waits until it runs and, unless every stub sets sleeper.upstream,
// shows an address.
func (g *Guest) Start(ctx context.Context, _ string) (err error) {
	defer g.note(&err, StatusRunning)
	return g.do(ctx, func(node, kind string) error {
		if kind == TypeQEMU {
			return g.vmStart(ctx, node)
		}
		return g.lxcStart(ctx, node)
	})
}

// Stop puts the guest to sleep by its stop method: for a VM with
// stop_method=hibernate a suspend to disk; else a clean shutdown within
// opt.Timeout, which PVE turns into a hard stop at the timeout (forceStop),
// and a stop of our own if even that did not bring it down. opt.Signal is
// ignored: PVE sends none of its own choosing.
func (g *Guest) Stop(ctx context.Context, _ string, opt watcher.StopOptions) (err error) {
	defer g.note(&err, StatusStopped)
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	return g.do(ctx, func(node, kind string) error {
		if kind == TypeQEMU && g.hibernates() {
			return g.vmHibernate(ctx, node)
		}
		return g.shutdown(ctx, node, kind, timeout)
	})
}

// Kill stops the guest at once (PVE's stop). The signal is ignored.
func (g *Guest) Kill(ctx context.Context, _ string, _ string) (err error) {
	defer g.note(&err, StatusStopped)
	return g.do(ctx, func(node, kind string) error { return g.kill(ctx, node, kind) })
}

// Pause suspends a VM in memory; an LXC fails with ErrPauseUnsupported.
func (g *Guest) Pause(ctx context.Context, _ string) error {
	return g.do(ctx, func(node, kind string) error {
		if kind != TypeQEMU {
			return g.wrap("", ErrPauseUnsupported)
		}
		return g.vmPause(ctx, node)
	})
}

// Unpause resumes a VM paused in memory; an LXC fails with
// ErrPauseUnsupported (it is never reported paused).
func (g *Guest) Unpause(ctx context.Context, _ string) error {
	return g.do(ctx, func(node, kind string) error {
		if kind != TypeQEMU {
			return g.wrap("", ErrPauseUnsupported)
		}
		return g.vmResume(ctx, node)
	})
}

// Inspect returns the guest's state as a watcher.Container from its live
// status/current: ID as ID returns, Name the guest's PVE name, Status
// running, paused (a VM suspended in memory) or stopped, StartedAt the same
// for every inspect of one run, FinishedAt when it was first seen stopped,
// and while it runs one network NetworkName with its address when it shows
// one (an address that cannot be read is no error: sleeper.upstream may not
// need one, and the watcher says so when it does).
func (g *Guest) Inspect(ctx context.Context, _ string) (c watcher.Container, err error) {
	err = g.do(ctx, func(node, kind string) error {
		c, err = g.inspect(ctx, node, kind)
		return err
	})
	if err != nil {
		return watcher.Container{}, g.wrap("", err)
	}
	return c, nil
}

func (g *Guest) inspect(ctx context.Context, node, kind string) (watcher.Container, error) {
	began := time.Now()
	st, err := g.rt.client.status(ctx, kind, node, g.vmid)
	if err != nil {
		return watcher.Container{}, err
	}
	now := time.Now()
	c := watcher.Container{InspectedAt: began, ID: g.ID(), Name: st.Name, Status: watcher.StatusStopped}
	switch {
	case st.Paused():
		c.Status = watcher.StatusPaused
	case st.Running():
		c.Status = watcher.StatusRunning
		if ip, ok := g.addr(ctx, node, kind); ok {
			c.Networks = []watcher.Network{{Name: NetworkName, IP: ip}}
		}
	case st.Status == StatusStopped:
	default:
		c.Error = "proxmox reports status " + st.Status
	}
	c.StartedAt, c.FinishedAt = g.rt.observe(guestKey{g.label, g.vmid}, st.Running(), st.Uptime, now)
	return c, nil
}

// addr reads the guest's address; a failure is logged, not returned.
func (g *Guest) addr(ctx context.Context, node, kind string) (netip.Addr, bool) {
	read := g.lxcAddr
	if kind == TypeQEMU {
		read = g.vmAddr
	}
	a, ok, err := read(ctx, node)
	if err != nil {
		g.log.Debug("guest address not readable", "error", err)
	}
	return a, ok
}

// awaitUnlocked waits while the guest carries a config lock that makes PVE
// refuse a start (a backup or a migration running), until ctx ends. A VM's
// "suspended" lock is its hibernation, which the start undoes.
func (g *Guest) awaitUnlocked(ctx context.Context, node, kind string) error {
	logged := false
	return poll(ctx, 100*time.Millisecond, time.Second, func() (bool, error) {
		st, err := g.rt.client.status(ctx, kind, node, g.vmid)
		if err != nil || st.Lock == "" || st.Lock == "suspended" || st.Running() {
			return true, err
		}
		if !logged {
			g.log.Info("guest is locked, waiting for PVE to finish", "lock", st.Lock)
			logged = true
		}
		return false, nil
	})
}

// awaitRunning waits until status/current says running: a task that ends
// does not mean that, for an HA-managed guest (the HA manager starts it on
// its own loop) nor for a guest that stops right away.
func (g *Guest) awaitRunning(ctx context.Context, node, kind string, viaHA bool) error {
	err := poll(ctx, 100*time.Millisecond, time.Second, func() (bool, error) {
		st, err := g.rt.client.status(ctx, kind, node, g.vmid)
		if err != nil {
			return false, err
		}
		if st.Running() && !st.Paused() {
			return true, nil
		}
		if viaHA || st.HA {
			return false, nil // the HA stack starts it in its own time
		}
		return false, errors.New("stopped again right after starting (see the task log in PVE)")
	})
	if err != nil {
		return g.wrap("wait until running", err)
	}
	return nil
}

// awaitAddr waits at most AddressWait, from now, for an address. It
// reports whether one showed.
func (g *Guest) awaitAddr(ctx context.Context, node, kind string) bool {
	if g.rt.addrWait < 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, g.rt.addrWait)
	defer cancel()
	err := poll(ctx, 100*time.Millisecond, time.Second, func() (bool, error) {
		_, ok := g.addr(ctx, node, kind)
		return ok, nil
	})
	return err == nil
}

// shutdown is the clean shutdown of either type: timeout is PVE's, with
// forceStop so that a guest ignoring it is stopped at the timeout within
// the same task (without, PVE waits about 2×timeout+5 s and then fails).
func (g *Guest) shutdown(ctx context.Context, node, kind string, timeout time.Duration) error {
	upid, err := g.rt.client.shutdown(ctx, kind, node, g.vmid, timeout, true)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return g.wrap("", err)
	}
	err = g.waitTask(ctx, node, upid, timeout+shutdownSlack)
	if err == nil {
		err = g.awaitStopped(ctx, node, kind, g.rt.stopWait(upid))
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return g.wrap("shutdown", err)
	}
	g.log.Warn("guest did not shut down within its stop timeout, stopping it by force",
		"stop_timeout", timeout.String(), "error", err)
	if kerr := g.kill(ctx, node, kind); kerr != nil {
		return fmt.Errorf("%w (after the shutdown failed: %w)", kerr, err)
	}
	return nil
}

// waitTask waits for a task at most within.
func (g *Guest) waitTask(ctx context.Context, node string, upid UPID, within time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, within, fmt.Errorf("task still running after %s", within))
	defer cancel()
	return g.rt.client.WaitTask(ctx, node, upid)
}

func (g *Guest) kill(ctx context.Context, node, kind string) error {
	upid, err := g.rt.client.action(ctx, kind, node, g.vmid, "stop", nil)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return g.wrap("", err)
	}
	if err := g.rt.client.WaitTask(ctx, node, upid); err != nil {
		return g.wrap("stop task", err)
	}
	// Without HA the task ends with the guest stopped; with HA the stack
	// stops it on its own loop.
	return g.awaitStopped(ctx, node, kind, g.rt.stopWait(upid)+killSlack)
}

// awaitStopped waits, at most within, until status/current says stopped.
func (g *Guest) awaitStopped(ctx context.Context, node, kind string, within time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, within,
		fmt.Errorf("still running %s after its task ended", within))
	defer cancel()
	err := poll(ctx, 100*time.Millisecond, time.Second, func() (bool, error) {
		st, err := g.rt.client.status(ctx, kind, node, g.vmid)
		if err != nil {
			return false, err
		}
		return !st.Running(), nil
	})
	if err != nil {
		return g.wrap("wait until stopped", err)
	}
	return nil
}

// note tells the poller the status sleeper itself just brought about, so
// that the next poll compares against it: a start in the PVE UI right after
// our stop, between two polls, is a change and not "running as before".
func (g *Guest) note(err *error, status string) {
	if *err == nil && g.rt.poller != nil {
		g.rt.poller.Note(g.Node(), g.vmid, status)
	}
}

// lxcStart starts an LXC and waits until it runs and shows an address.
func (g *Guest) lxcStart(ctx context.Context, node string) error {
	if err := g.awaitUnlocked(ctx, node, TypeLXC); err != nil {
		return g.wrap("wait for the lock", err)
	}
	upid, err := g.rt.client.Start(ctx, node, g.vmid)
	switch {
	case errors.Is(err, ErrAlreadyRunning):
		// Started by hand, or by an earlier attempt that timed out.
		g.log.Debug("lxc already running")
	case err != nil:
		return g.wrap("", err)
	default:
		if err := g.rt.client.WaitTask(ctx, node, upid); err != nil {
			return g.wrap("start task", err)
		}
	}
	if err := g.awaitRunning(ctx, node, TypeLXC, upid.viaHA()); err != nil {
		return err
	}
	// The address clock starts once the guest runs: an HA start may take
	// the HA manager's loop before that.
	if !usesUpstream(g.stubs()) && !g.awaitAddr(ctx, node, TypeLXC) {
		// An explicit upstream may not need one: let the watcher decide,
		// it reports a missing address clearly.
		g.log.Warn("lxc runs but shows no address", "waited", g.rt.addrWait.String())
	}
	return nil
}
