package proxmox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"sleeper/pkg/watcher"
)

// Guest is the watcher.Runtime of one LXC guest, made by Runtime.For. Its
// methods ignore the container ID they are given. Every method is
// idempotent: starting a running guest or stopping a stopped one succeeds.
type Guest struct {
	rt   *Runtime
	node string
	vmid int
	log  *slog.Logger
}

// Node returns the PVE node the guest lives on.
func (g *Guest) Node() string { return g.node }

// VMID returns the guest's id.
func (g *Guest) VMID() int { return g.vmid }

// ID returns GuestID(node, vmid), the ID Inspect reports.
func (g *Guest) ID() string { return GuestID(g.node, g.vmid) }

// guestError names the guest in front of a client error and lets the
// watcher's own ErrNotFound match a guest that does not exist.
type guestError struct {
	node string
	vmid int
	step string // "" when the wrapped error says it already
	err  error
}

func (e *guestError) Error() string {
	if e.step == "" {
		return fmt.Sprintf("lxc %d on %s: %v", e.vmid, e.node, e.err)
	}
	return fmt.Sprintf("lxc %d on %s: %s: %v", e.vmid, e.node, e.step, e.err)
}

func (e *guestError) Unwrap() error { return e.err }

func (e *guestError) Is(target error) bool {
	return target == watcher.ErrNotFound && errors.Is(e.err, ErrNotFound)
}

func (g *Guest) wrap(step string, err error) error {
	return &guestError{node: g.node, vmid: g.vmid, step: step, err: err}
}

// Start starts the guest and waits for its task, then until it runs (an HA
// managed guest is started by the HA stack after the task) and shows an
// address, for at most RuntimeConfig.AddressWait.
func (g *Guest) Start(ctx context.Context, _ string) (err error) {
	defer g.rt.fast()()
	defer g.note(&err, StatusRunning)
	upid, err := g.rt.client.Start(ctx, g.node, g.vmid)
	switch {
	case errors.Is(err, ErrAlreadyRunning):
		// Started by hand, or by an earlier attempt that timed out: the
		// goal is reached.
		g.log.Debug("lxc already running")
	case err != nil:
		return g.wrap("", err)
	default:
		if err := g.rt.client.WaitTask(ctx, g.node, upid); err != nil {
			return g.wrap("start task", err)
		}
	}
	return g.awaitUp(ctx, upid)
}

// awaitUp waits until the guest runs and has an address.
func (g *Guest) awaitUp(ctx context.Context, upid UPID) error {
	info, _ := upid.Parse()
	viaHA := strings.HasPrefix(info.Type, "ha")
	addrBy := time.Now().Add(g.rt.addrWait)
	err := poll(ctx, 100*time.Millisecond, time.Second, func() (bool, error) {
		st, err := g.rt.client.Status(ctx, g.node, g.vmid)
		if err != nil {
			return false, err
		}
		if !st.Running() {
			if viaHA {
				return false, nil // the HA stack starts it in its own time
			}
			return false, errors.New("stopped again right after starting (see the task log in PVE)")
		}
		if g.rt.addrWait < 0 {
			return true, nil
		}
		ifs, err := g.rt.client.Interfaces(ctx, g.node, g.vmid)
		if err != nil {
			return false, err
		}
		if _, ok := pickAddr(ifs); ok {
			return true, nil
		}
		if time.Now().After(addrBy) {
			// An explicit upstream label may not need one: let the
			// watcher decide, it reports a missing address clearly.
			g.log.Warn("lxc runs but shows no address", "waited", g.rt.addrWait.String())
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return g.wrap("wait until running", err)
	}
	return nil
}

// Stop shuts the guest down cleanly within opt.Timeout (whole seconds;
// opt.Signal is ignored: PVE sends none of its own choosing), and stops it
// by force when that did not bring it down.
func (g *Guest) Stop(ctx context.Context, _ string, opt watcher.StopOptions) (err error) {
	defer g.note(&err, StatusStopped)
	defer g.rt.fast()()
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	upid, err := g.rt.client.Shutdown(ctx, g.node, g.vmid, timeout, false)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return g.wrap("", err)
	}
	err = g.rt.client.WaitTask(ctx, g.node, upid)
	if err == nil {
		err = g.awaitStopped(ctx, timeout+5*time.Second)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return g.wrap("shutdown", err)
	}
	g.log.Warn("lxc did not shut down within its stop timeout, stopping it by force",
		"stop_timeout", timeout.String(), "error", err)
	if kerr := g.kill(ctx); kerr != nil {
		return fmt.Errorf("%w (after the shutdown failed: %w)", kerr, err)
	}
	return nil
}

// Kill stops the guest at once (PVE's stop, lxc-stop --kill). The signal
// is ignored: PVE takes none.
func (g *Guest) Kill(ctx context.Context, _ string, _ string) (err error) {
	defer g.note(&err, StatusStopped)
	defer g.rt.fast()()
	return g.kill(ctx)
}

func (g *Guest) kill(ctx context.Context) error {
	upid, err := g.rt.client.Stop(ctx, g.node, g.vmid)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return g.wrap("", err)
	}
	if err := g.rt.client.WaitTask(ctx, g.node, upid); err != nil {
		return g.wrap("stop task", err)
	}
	// Without HA the task ends with the guest stopped; with HA the stack
	// stops it shortly after.
	return g.awaitStopped(ctx, 30*time.Second)
}

// awaitStopped waits, at most within, until status/current says stopped.
func (g *Guest) awaitStopped(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, within,
		fmt.Errorf("still running %s after its task ended", within))
	defer cancel()
	err := poll(ctx, 100*time.Millisecond, time.Second, func() (bool, error) {
		st, err := g.rt.client.Status(ctx, g.node, g.vmid)
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

// Pause always fails with ErrPauseUnsupported.
func (g *Guest) Pause(context.Context, string) error { return g.wrap("", ErrPauseUnsupported) }

// Unpause always fails with ErrPauseUnsupported: an LXC is never reported paused.
func (g *Guest) Unpause(context.Context, string) error { return g.wrap("", ErrPauseUnsupported) }

// Inspect returns the guest's state as a watcher.Container: ID GuestID,
// Name the guest's PVE name, Status running or stopped, StartedAt the same
// for every inspect of one run (derived from the uptime), FinishedAt when
// it was first seen stopped, and while it runs one network NetworkName with
// its first IPv4 address that is not on lo (else a global IPv6 one).
func (g *Guest) Inspect(ctx context.Context, _ string) (watcher.Container, error) {
	began := time.Now()
	st, err := g.rt.client.Status(ctx, g.node, g.vmid)
	if err != nil {
		return watcher.Container{}, g.wrap("", err)
	}
	now := time.Now()
	c := watcher.Container{InspectedAt: began, ID: g.ID(), Name: st.Name, Status: watcher.StatusStopped}
	switch st.Status {
	case StatusRunning:
		c.Status = watcher.StatusRunning
		ifs, err := g.rt.client.Interfaces(ctx, g.node, g.vmid)
		if err != nil && !errors.Is(err, ErrNotRunning) {
			return watcher.Container{}, g.wrap("", err)
		}
		if ip, ok := pickAddr(ifs); ok {
			c.Networks = []watcher.Network{{Name: NetworkName, IP: ip}}
		}
	case StatusStopped:
	default:
		c.Error = "proxmox reports status " + st.Status
	}
	c.StartedAt, c.FinishedAt = g.rt.observe(guestKey{g.node, g.vmid}, st.Running(), st.Uptime, now)
	return c, nil
}

// pickAddr returns the address to dial: the first IPv4 address of an
// interface other than lo, else the first global IPv6 one. The loopback
// interface is skipped by name, not by address range: a guest's addresses
// are never loopback in practice, and the test fake's guest is 127.0.0.2.
func pickAddr(ifs []Interface) (netip.Addr, bool) {
	for _, i := range ifs {
		if a, ok := parseInet(i.Inet); ok && i.Name != "lo" && a.Is4() {
			return a, true
		}
	}
	for _, i := range ifs {
		if a, ok := parseInet(i.Inet6); ok && i.Name != "lo" && a.Is6() && a.IsGlobalUnicast() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// parseInet reads "192.0.2.10/24", or a bare address.
func parseInet(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// note tells the poller the status sleeper itself just brought about, so
// that the next poll compares against it: a start in the PVE UI right after
// our stop, between two polls, is a change and not "running as before".
func (g *Guest) note(err *error, status string) {
	if *err == nil && g.rt.poller != nil {
		g.rt.poller.Note(g.node, g.vmid, status)
	}
}
