package watcher_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// guest is one Proxmox-like workload behind stub containers: a Runtime
// whose state the test sets, as the guest started by hand would be.
type guest struct {
	watcher.Runtime // unused methods panic
	mu              sync.Mutex
	running         bool
}

func (g *guest) setRunning(b bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running = b
}

func (g *guest) Inspect(context.Context, string) (watcher.Container, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := watcher.Container{ID: "lxc/pve1/105", InspectedAt: time.Now(), Status: watcher.StatusStopped,
		Health: watcher.HealthHealthy, Published: map[string]string{"80/tcp": "127.0.0.1:9"}}
	if g.running {
		c.Status, c.StartedAt = watcher.StatusRunning, time.Now()
	}
	return c, nil
}

// Target implements watcher.Targets: a container with the proxmox labels
// is a stub for g.
func (g *guest) Target(spec labels.Spec) (watcher.Target, bool, error) {
	if spec.Proxmox == nil {
		return watcher.Target{}, false, nil
	}
	return watcher.Target{Key: "pve1/105", Provider: "proxmox", Runtime: g}, true, nil
}

// TestSeveralEnginesProxmoxStub: a stub container on engine b stands for
// a guest. When the guest changes, main enqueues the stub's key on every
// engine's reconciler: engine b's reconciles it and the stub observes the
// guest's new state; engine a's ignores the key (no inspect on engine a,
// where a container of the same name is no stub).
func TestSeveralEnginesProxmoxStub(t *testing.T) {
	t.Parallel()
	stub := labelled("app", "proxmox.node", "pve1", "proxmox.vmid", "105")
	stub.Labels["sleeper.hosts"] = "app-b.localhost"
	ea, eb := watchertest.NewEngine(labelled("app")), watchertest.NewEngine(stub)
	g := &guest{}
	reg, _, rcs := twoEnginesWith(t, ea, eb, g)
	await.Eventually(t, 5*time.Second, "both listed", hasNames(reg, "a/app", "b/app"))
	if names := reg.StubNames("pve1/105"); !slices.Equal(names, []string{"b/app"}) {
		t.Fatalf("stubs of the guest %v, want [b/app]", names)
	}
	w := reg.Get("b/app")
	if w.State() != watcher.StateAsleep {
		t.Fatalf("stub state %s before the guest runs, want asleep", w.State())
	}
	inspectsA := ea.Calls("inspect", "app")
	g.setRunning(true) // started in Proxmox by hand
	for _, rc := range rcs {
		rc.Enqueue("b/app")
	}
	await.Eventually(t, 5*time.Second, "b/app awake with its guest", func() bool { return w.State() == watcher.StateReady })
	if n := ea.Calls("inspect", "app"); n != inspectsA {
		t.Fatalf("engine a inspected its own app %d times for b/app's key", n-inspectsA)
	}
	if a := reg.Get("a/app"); a.State() != watcher.StateAsleep {
		t.Fatalf("a/app is %s, want asleep: another engine's stub is not its business", a.State())
	}
}

// TestSetSelfNetworksPerEngine: sleeper's own networks, learnt once an
// engine answers, reach the watchers of that engine only.
func TestSetSelfNetworksPerEngine(t *testing.T) {
	t.Parallel()
	ea, eb := watchertest.NewEngine(), watchertest.NewEngine()
	reg := watcher.NewRegistry(watcher.RegistryConfig{Log: slog.New(slog.DiscardHandler),
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour},
		Engines: map[string]watcher.Engine{
			"a": {Runtime: ea, Provider: "docker"},
			"b": {Runtime: eb, Provider: "docker", SelfNetworks: []string{"stale"}},
		}})
	t.Cleanup(reg.Close)
	reg.SetSelfNetworks("b", []string{"front"})
	a, b := labelled("web"), labelled("api")
	a.Engine, b.Engine = "a", "b"
	reg.ApplyAll([]watcher.Container{a, b})
	if got := reg.Get("b/api").SelfNetworks(); !slices.Equal(got, []string{"front"}) {
		t.Errorf("b/api self networks %v, want [front]", got)
	}
	if got := reg.Get("a/web").SelfNetworks(); got != nil {
		t.Errorf("a/web self networks %v, want none: sleeper is not on engine a", got)
	}
}
