package watcher

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// slowStop: Stop takes a while, during which the container is recreated by compose.
type slowStop struct {
	*fakeRuntime
	during func()
}

func (s *slowStop) Stop(ctx context.Context, id string, o StopOptions) error {
	s.during()
	time.Sleep(50 * time.Millisecond)
	return s.fakeRuntime.Stop(ctx, id, o)
}

func TestRecreateDuringOwnStopIsSeen(t *testing.T) {
	f := newFake(t)
	var newObs Container
	s := &slowStop{fakeRuntime: f}
	w := New(Config{Name: "app", Spec: testSpec(), Runtime: s, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(w.Close)
	w.Observe(f.c)
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.during = func() {
		// compose recreated the container: c2 running; the reconciler inspects it now
		f.mu.Lock()
		f.c.ID = "c2"
		f.c.Created = time.Now()
		f.c.StartedAt = time.Now()
		f.c.Status = StatusRunning
		f.mu.Unlock()
		newObs, _ = f.Inspect(context.Background(), "c2")
	}
	if err := w.Sleep(context.Background(), "idle"); err != nil {
		t.Fatal(err)
	}
	w.Observe(newObs) // the reconcile delivers it after our stop returned
	t.Logf("watcher id=%s state=%s (engine has %s)", w.ID(), w.State(), "c2")
	if w.ID() != "c2" {
		t.Errorf("observation of the new container c2 dropped; watcher still on c1")
	}
}

// relist applies an older snapshot after a reconcile applied the newer one.
func TestOlderSnapshotDoesNotRevert(t *testing.T) {
	f := newFake(t)
	reg := NewRegistry(RegistryConfig{Runtime: f, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	lbl := map[string]string{"sleeper.enable": "true", "sleeper.hosts": "app.localhost"}
	old := Container{ID: "c1", Name: "app", Status: StatusRunning, Created: time.Now(), Labels: lbl, InspectedAt: time.Now()}
	time.Sleep(time.Millisecond)
	nw := Container{ID: "c2", Name: "app", Status: StatusRunning, Created: time.Now(), Labels: lbl, InspectedAt: time.Now()}
	reg.Apply(nw)                  // event reconcile
	reg.ApplyAll([]Container{old}) // relist's earlier inspect, applied late
	w := reg.Get("app")
	t.Logf("watcher id=%s", w.ID())
	if w.ID() != "c2" {
		t.Errorf("stale relist snapshot reverted the watcher to %s", w.ID())
	}
}

var _ sync.Mutex

type cfgRec struct {
	NopRecorder
	mu  sync.Mutex
	cfg map[string]bool
}

func (c *cfgRec) ConfigError(n string, b bool) { c.mu.Lock(); c.cfg[n] = b; c.mu.Unlock() }

func TestCycleStaysAConfigError(t *testing.T) {
	rec := &cfgRec{cfg: map[string]bool{}}
	f := newFake(t)
	reg := NewRegistry(RegistryConfig{Runtime: f, Log: slog.New(slog.DiscardHandler), Recorder: rec})
	t.Cleanup(reg.Close)
	a := Container{ID: "a1", Name: "a", Status: StatusStopped, Created: time.Now(), Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "a.localhost", "sleeper.depends_on": "b"}}
	b := Container{ID: "b1", Name: "b", Status: StatusStopped, Created: time.Now(), Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "b.localhost", "sleeper.depends_on": "a"}}
	reg.ApplyAll([]Container{a, b})
	t.Logf("after first apply: %v", rec.cfg)
	reg.Apply(a) // resync / any event
	t.Logf("after re-apply of a: %v; managed=%v", rec.cfg, reg.Get("a") != nil)
	if !rec.cfg["a"] {
		t.Errorf("config error metric cleared for a container still in a cycle")
	}
}
