package proxmox

import (
	"context"
	"errors"
	"net/netip"
	"sleeper/internal/await"
	"testing"
	"time"

	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/watcher"
)

// The tests below each switch on one behaviour of a real PVE node in the
// fake, and prove the runtime copes with it.

func mustInspectAddr(t *testing.T, g watcher.Runtime) (netip.Addr, bool) {
	t.Helper()
	c, err := g.Inspect(testContext(t), "")
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if len(c.Networks) == 0 {
		return netip.Addr{}, false
	}
	return c.Networks[0].IP, true
}

// Nodes before pve-container 5.0.6 answer 501 for /interfaces: the static
// address of the guest's config is used, and nothing fails.
func TestRealNodeWithoutInterfaces(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.SetRealNode(pvefake.RealNode{NoInterfaces: true})
	rt, _ := newRuntime(t, f, 2*time.Second)
	g := rt.For("pve1", 101)
	if err := g.Start(testContext(t), ""); err != nil {
		t.Fatalf("start: %v", err)
	}
	if a, ok := mustInspectAddr(t, g); !ok || a != guestAddr {
		t.Fatalf("address %v %v, want %v from the config", a, ok, guestAddr)
	}
	if f.Calls(pvefake.EndpointConfig) == 0 {
		t.Fatal("the config was never read")
	}
}

// inet6 holds only the last IPv6 address, often the link-local one: the
// full list's global address is picked, and never a link-local one.
func TestRealNodeAddressLists(t *testing.T) {
	t.Parallel()
	global := netip.MustParseAddr("2001:db8::10")
	for _, tt := range []struct {
		name     string
		lastOnly bool
		want     bool
	}{{"full list", false, true}, {"last address only", true, false}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, pvefake.Config{})
			f.AddLXC("pve1", 150, "v6only", global)
			f.SetRealNode(pvefake.RealNode{LastAddressOnly: tt.lastOnly})
			if err := f.SetRunning("pve1", 150, true); err != nil {
				t.Fatal(err)
			}
			rt, _ := newRuntime(t, f, 0)
			a, ok := mustInspectAddr(t, rt.For("pve1", 150))
			if ok != tt.want || (ok && a != global) {
				t.Fatalf("address %v %v, want %v", a, ok, tt.want)
			}
		})
	}
}

// After a migration the label's node says "does not exist": the guest is
// followed by its vmid through /cluster/resources.
func TestRealNodeMigration(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddLXC("pve1", 160, "stays", guestAddr)
	rt, _ := newRuntime(t, f, 0)
	g := rt.For("pve1", 101)
	if _, err := g.Inspect(testContext(t), ""); err != nil {
		t.Fatal(err)
	}
	f.Migrate(101, "pve2")
	if err := g.Start(testContext(t), ""); err != nil {
		t.Fatalf("start after the migration: %v", err)
	}
	if st := f.Status("pve2", 101); st != "running" {
		t.Fatalf("guest on pve2 is %s", st)
	}
	if c, err := g.Inspect(testContext(t), ""); err != nil || c.Status != watcher.StatusRunning || c.ID != GuestID("pve1", 101) {
		t.Fatalf("inspect after the migration: %+v %v", c, err)
	}
}

// An HA start is a hastart task that only asks the HA manager: the wait for
// an address begins once the guest runs, not when the task ends.
func TestRealNodeHAStart(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.SetHA(101, true)
	f.SetRealNode(pvefake.RealNode{HADelay: 600 * time.Millisecond, AddressDelay: 300 * time.Millisecond})
	rt, _ := newRuntime(t, f, 500*time.Millisecond)
	g := rt.For("pve1", 101)
	if err := g.Start(testContext(t), ""); err != nil {
		t.Fatalf("start: %v", err)
	}
	if a, ok := mustInspectAddr(t, g); !ok || a != guestAddr {
		t.Fatalf("start returned before the address showed: %v %v", a, ok)
	}
	if err := g.Stop(testContext(t), "", watcher.StopOptions{Timeout: time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := f.Status("pve1", 101); st != "stopped" {
		t.Fatalf("after the HA stop the guest is %s", st)
	}
}

// A guest that ignores shutdown: without forceStop PVE's task takes
// 2×timeout+5 s and fails, past the deadline the watcher gives a stop
// (stop_timeout+30 s); with forceStop it is killed at the timeout.
func TestRealNodeShutdownTiming(t *testing.T) {
	t.Parallel()
	const second = 10 * time.Millisecond // one PVE second in the fake
	f := newFake(t, pvefake.Config{})
	f.SetRealNode(pvefake.RealNode{Second: second})
	f.HangShutdown("pve1", 101, true)
	if err := f.SetRunning("pve1", 101, true); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, f, 0)
	// The watcher's deadline, in the fake's seconds: stop_timeout + 30.
	ctx, cancel := context.WithTimeout(testContext(t), (60+30)*second)
	defer cancel()
	if err := rt.For("pve1", 101).Stop(ctx, "", watcher.StopOptions{Timeout: 60 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := f.Status("pve1", 101); st != "stopped" {
		t.Fatalf("guest is %s", st)
	}
	if form := f.LastForm(pvefake.EndpointShutdown); form.Get("forceStop") != "1" || form.Get("timeout") != "60" {
		t.Fatalf("shutdown form %v", form)
	}
}

// /cluster/resources is refreshed every 10 s on a real node: a start
// watches the guest's live status/current, and does not poll the stale
// list faster.
func TestRealNodeStaleResources(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{TaskDelay: 300 * time.Millisecond})
	f.SetRealNode(pvefake.RealNode{ResourcesRefresh: time.Hour})
	log, _ := testLogger(t)
	client := newClient(t, f, nil)
	p := NewPoller(PollerConfig{Client: client, Interval: time.Hour, FastInterval: 10 * time.Millisecond, Log: log})
	runPoller(t, p)
	await.Eventually(t, 5*time.Second, "first poll", func() bool { return f.Calls(pvefake.EndpointResources) >= 1 })
	rt := NewRuntime(RuntimeConfig{Client: client, Poller: p, Log: log})
	base := f.Calls(pvefake.EndpointResources)
	g := rt.For("pve1", 101)
	if err := g.Start(testContext(t), ""); err != nil {
		t.Fatal(err)
	}
	if err := g.Stop(testContext(t), "", watcher.StopOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	// One call finds the guest's type; no fast polling on top.
	if n := f.Calls(pvefake.EndpointResources) - base; n > 1 {
		t.Fatalf("%d resource list calls during a start and a stop", n)
	}
}

// A node whose stats are missing shows its guests as unknown: no news,
// not a change.
func TestRealNodeUnknownStatus(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	log, _ := testLogger(t)
	var ch changes
	p := NewPoller(PollerConfig{Client: newClient(t, f, nil), Interval: 10 * time.Millisecond, OnChange: ch.add, Log: log})
	runPoller(t, p)
	await.Eventually(t, 5*time.Second, "first poll", func() bool { return ch.has("pve1/101=stopped") })
	f.SetResourceStatus(101, "unknown")
	base := f.Calls(pvefake.EndpointResources)
	await.Eventually(t, 5*time.Second, "more polls", func() bool { return f.Calls(pvefake.EndpointResources) >= base+3 })
	if ch.has("pve1/101=unknown") {
		t.Fatalf("unknown reported as a change: %v", ch.list())
	}
}

// A guest locked by a backup refuses to start: the wake waits for the lock
// to clear instead of failing.
func TestRealNodeLock(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.SetLock(101, "backup")
	rt, _ := newRuntime(t, f, 0)
	done := make(chan error, 1)
	go func() { done <- rt.For("pve1", 101).Start(testContext(t), "") }()
	await.Eventually(t, 5*time.Second, "status polled while locked", func() bool { return f.Calls(pvefake.EndpointCurrent) >= 2 })
	f.SetLock(101, "")
	if err := <-done; err != nil {
		t.Fatalf("start: %v", err)
	}
	if st := f.Status("pve1", 101); st != "running" {
		t.Fatalf("guest is %s", st)
	}
}

// A 403 names the privilege the token lacks.
func TestPermissionErrorNamesPrivilege(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.Deny(pvefake.EndpointStart, "VM.PowerMgmt")
	rt, _ := newRuntime(t, f, 0)
	err := rt.For("pve1", 101).Start(testContext(t), "")
	var api *APIError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &api) || api.Privilege() != "VM.PowerMgmt" {
		t.Fatalf("err %v, want a 403 naming VM.PowerMgmt", err)
	}
	mustContainText(t, err.Error(), "lacks the privilege VM.PowerMgmt")
}
