package proxmox

import (
	"sleeper/internal/await"

	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/proxmox/pvefake"
)

// changes records the poller's callbacks.
type changes struct {
	mu  sync.Mutex
	got []string
}

func (c *changes) add(node string, vmid int, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, fmt.Sprintf("%s/%d=%s", node, vmid, status))
}

func (c *changes) has(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.got {
		if g == s {
			return true
		}
	}
	return false
}

func (c *changes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// runPoller runs p until the test ends and checks that Run returns nil.
func runPoller(t *testing.T, p *Poller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil on cancellation", err)
		}
	})
}

func TestPollerNoticesOutOfBandChanges(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddLXC("pve2", 202, "other", guestAddr)
	f.AddQEMU("pve1", 300, "a-vm")
	log, _ := testLogger(t)
	var ch changes
	p := NewPoller(PollerConfig{Client: newClient(t, f, nil), Interval: 20 * time.Millisecond, OnChange: ch.add, Log: log})
	runPoller(t, p)

	// The first poll reports every guest, LXC and VM alike.
	await.Eventually(t, 5*time.Second, "first poll reports both LXCs and the VM", func() bool {
		return ch.has("pve1/101=stopped") && ch.has("pve2/202=stopped") && ch.has("pve1/300=stopped")
	})
	// A start in the PVE UI.
	if err := f.SetRunning("pve2", 202, true); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 5*time.Second, "the start is noticed", func() bool { return ch.has("pve2/202=running") })
	if s, ok := p.Status("pve2", 202); !ok || s != StatusRunning {
		t.Errorf("Status = %q, %v", s, ok)
	}
	// A destroyed guest is reported with an empty status.
	f.Remove("pve2", 202)
	await.Eventually(t, 5*time.Second, "the removal is noticed", func() bool { return ch.has("pve2/202=") })
	// Nothing changed for 101: reported once, by the first poll.
	n := 0
	for _, c := range ch.list() {
		if c == "pve1/101=stopped" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("101 reported %d times: %v", n, ch.list())
	}
}

func TestPollerFast(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	log, _ := testLogger(t)
	p := NewPoller(PollerConfig{Client: newClient(t, f, nil), Interval: time.Hour, FastInterval: 10 * time.Millisecond, Log: log})
	runPoller(t, p)
	await.Eventually(t, 5*time.Second, "the first poll", func() bool { return f.Calls(pvefake.EndpointResources) >= 1 })
	if got := p.interval(); got != time.Hour {
		t.Fatalf("interval %s before Fast, want 1h", got)
	}
	release1 := p.Fast()
	release2 := p.Fast()
	base := f.Calls(pvefake.EndpointResources)
	// With an hour's interval, more polls can only come from fast mode,
	// and they start without waiting out the slow interval.
	await.Eventually(t, 5*time.Second, "fast polls", func() bool { return f.Calls(pvefake.EndpointResources) >= base+5 })
	release1()
	release1() // twice is harmless
	if got := p.interval(); got != 10*time.Millisecond {
		t.Errorf("interval %s while one holder remains, want 10ms", got)
	}
	release2()
	if got := p.interval(); got != time.Hour {
		t.Errorf("interval %s after release, want 1h", got)
	}
}

func TestPollerSurvivesFailures(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{UnauthorizedDelay: time.Millisecond})
	log, buf := testLogger(t)
	var ch changes
	c := newClient(t, f, func(c *Config) { c.Secret = "wrong" })
	p := NewPoller(PollerConfig{Client: c, Interval: 5 * time.Millisecond, OnChange: ch.add, Log: log})
	runPoller(t, p)
	await.Eventually(t, 5*time.Second, "several failed polls", func() bool { return f.Calls(pvefake.EndpointUnauthorized) >= 3 })
	if n := buf.Count("level=WARN msg=\"proxmox poll failed"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1; log:\n%s", n, buf)
	}
	if got := ch.list(); len(got) != 0 {
		t.Errorf("changes reported without a successful poll: %v", got)
	}
}

// TestPollerSeesAStartRightAfterOurStop: sleeper stops a guest and someone
// starts it in the PVE UI before the next poll. The poller never saw it
// stopped, but Note told it, so the start is still a change.
func TestPollerSeesAStartRightAfterOurStop(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddLXC("pve1", 110, "app", guestAddr)
	if err := f.SetRunning("pve1", 110, true); err != nil {
		t.Fatal(err)
	}
	ch := &changes{}
	log, _ := testLogger(t)
	p := NewPoller(PollerConfig{Client: newClient(t, f, nil), Interval: time.Hour, OnChange: ch.add, Log: log})
	p.poll(context.Background()) // first poll: running
	before := len(ch.list())
	p.Note("pve1", 110, StatusStopped) // our stop, and a UI start before the next poll
	p.poll(context.Background())
	if got := ch.list(); len(got) != before+1 || got[len(got)-1] != "pve1/110=running" {
		t.Fatalf("changes %v, want one more: pve1/110=running", got)
	}
}
