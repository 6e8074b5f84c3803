package watcher

import (
	"sleeper/internal/await"

	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// guestFake is one Proxmox guest as the watcher sees it through a runtime:
// starting takes a moment, and the app in it is healthy once it runs.
type guestFake struct {
	Runtime // unimplemented methods panic

	mu      sync.Mutex
	running bool
	started time.Time
	calls   map[string]int
}

// Target implements Targets: a container with the proxmox labels is a stub
// for this one guest.
func (g *guestFake) Target(spec labels.Spec) (Target, bool, error) {
	if spec.Proxmox == nil {
		return Target{}, false, nil
	}
	return Target{Key: "pve1/105", Provider: "proxmox", Runtime: g}, true, nil
}

func (g *guestFake) count(op string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[op]
}

func (g *guestFake) Inspect(context.Context, string) (Container, error) {
	began := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := Container{ID: "lxc/pve1/105", InspectedAt: began, Status: StatusStopped, StartedAt: g.started,
		Health: HealthHealthy, Published: map[string]string{"80/tcp": "127.0.0.1:9"}}
	if g.running {
		c.Status = StatusRunning
	}
	return c, nil
}

func (g *guestFake) Start(context.Context, string) error {
	time.Sleep(50 * time.Millisecond) // the start task
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls["start"]++
	g.running, g.started = true, time.Now()
	return nil
}

func (g *guestFake) Stop(context.Context, string, StopOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls["stop"]++
	g.running = false
	return nil
}

// twoStubs is a registry with two stub containers, a and b, for one guest.
func twoStubs(t *testing.T, idleA, idleB string) (*guestFake, *Watcher, *Watcher) {
	t.Helper()
	g := &guestFake{calls: map[string]int{}}
	reg := NewRegistry(RegistryConfig{Runtime: g, Provider: "docker", Targets: g, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	stub := func(name, idle string) Container {
		return Container{ID: "stub-" + name, Name: name, Status: StatusStopped, Created: time.Now(), Labels: map[string]string{
			"sleeper.enable": "true", "sleeper.hosts": name + ".localhost", "sleeper.idle_timeout": idle,
			"sleeper.proxmox.node": "pve1", "sleeper.proxmox.vmid": "105",
		}}
	}
	reg.ApplyAll([]Container{stub("a", idleA), stub("b", idleB)})
	a, b := reg.Get("a"), reg.Get("b")
	if a == nil || b == nil {
		t.Fatal("stubs not managed")
	}
	return g, a, b
}

// TestStubsOfOneGuestSleepTogether: two stubs name one Proxmox guest. One
// stub's idle timeout does not stop the guest while the other stub is
// busy; the guest sleeps once both are idle, with one stop.
func TestStubsOfOneGuestSleepTogether(t *testing.T) {
	t.Parallel()
	g, a, b := twoStubs(t, "150ms", "1h")
	for _, w := range []*Watcher{a, b} {
		if _, err := w.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !b.Acquire() {
		t.Fatal("b not ready")
	}
	holds(t, 600*time.Millisecond, func() bool { return g.count("stop") == 0 }, "no stop while b has a request open")
	b.Release()
	// b has been idle for longer than its timeout.
	b.lastActivity.Store(monoNow() - int64(2*time.Hour))
	await.Eventually(t, 5*time.Second, "both stubs asleep once both are idle",
		func() bool { return a.State() == StateAsleep && b.State() == StateAsleep })
	if n := g.count("stop"); n != 1 {
		t.Fatalf("%d stops of the guest, want 1", n)
	}
}

// TestStubsOfOneGuestShareTheWake: two stubs woken at once start their
// guest once.
func TestStubsOfOneGuestShareTheWake(t *testing.T) {
	t.Parallel()
	g, a, b := twoStubs(t, "1h", "1h")
	var wg sync.WaitGroup
	for _, w := range []*Watcher{a, b} {
		wg.Go(func() {
			if _, err := w.Wait(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := g.count("start"); n != 1 {
		t.Fatalf("%d starts of the guest, want 1", n)
	}
}

// guestWithStats is a guestFake whose runtime reads resource use, as a
// Proxmox guest's does.
type guestWithStats struct{ *guestFake }

func (g guestWithStats) Target(spec labels.Spec) (Target, bool, error) {
	t, ok, err := g.guestFake.Target(spec)
	t.Runtime = g
	return t, ok, err
}

func (g guestWithStats) Stats(context.Context, string, bool) (Usage, error) {
	return Usage{MemoryBytes: 96 << 20}, nil
}

// TestStubRecordsMemoryFreed: a stub's guest is measured through the
// runtime its stubs share, so the memory its sleep frees is recorded.
func TestStubRecordsMemoryFreed(t *testing.T) {
	t.Parallel()
	g := guestWithStats{&guestFake{calls: map[string]int{}}}
	reg := NewRegistry(RegistryConfig{Runtime: g, Provider: "docker", Targets: g, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	reg.ApplyAll([]Container{{ID: "stub-a", Name: "a", Status: StatusStopped, Created: time.Now(), Labels: map[string]string{
		"sleeper.enable": "true", "sleeper.hosts": "a.localhost", "sleeper.idle_timeout": "150ms",
		"sleeper.proxmox.node": "pve1", "sleeper.proxmox.vmid": "105",
	}}})
	a := reg.Get("a")
	if a == nil {
		t.Fatal("stub not managed")
	}
	if _, err := a.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 5*time.Second, "the stub asleep", func() bool { return a.State() == StateAsleep })
	if got := a.Info().MemoryFreed; got != 96<<20 {
		t.Fatalf("memory freed %d, want the guest's 96 MiB", got)
	}
}

// TestSharedGuestMemoryCreditedOnce: two stubs of one guest sleep together;
// the guest's memory is freed once, so only one of them is credited with it.
func TestSharedGuestMemoryCreditedOnce(t *testing.T) {
	t.Parallel()
	g := guestWithStats{&guestFake{calls: map[string]int{}}}
	reg := NewRegistry(RegistryConfig{Runtime: g, Provider: "docker", Targets: g, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	stub := func(id, name string) Container {
		return Container{ID: id, Name: name, Status: StatusStopped, Created: time.Now(), Labels: map[string]string{
			"sleeper.enable": "true", "sleeper.hosts": name + ".localhost", "sleeper.idle_timeout": "150ms",
			"sleeper.proxmox.node": "pve1", "sleeper.proxmox.vmid": "105",
		}}
	}
	reg.ApplyAll([]Container{stub("stub-a", "a"), stub("stub-b", "b")})
	a, b := reg.Get("a"), reg.Get("b")
	if a == nil || b == nil {
		t.Fatal("stubs not managed")
	}
	for _, w := range []*Watcher{a, b} {
		if _, err := w.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	await.Eventually(t, 5*time.Second, "both stubs asleep", func() bool {
		return a.State() == StateAsleep && b.State() == StateAsleep
	})
	if fa, fb := a.Info().MemoryFreed, b.Info().MemoryFreed; fa+fb != 96<<20 || fa != 96<<20 {
		t.Fatalf("memory freed a=%d b=%d, want the guest's 96 MiB once, on a", fa, fb)
	}
}
