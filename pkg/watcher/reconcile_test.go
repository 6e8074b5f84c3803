package watcher

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// cutSource is an engine that goes away during sleeper's discovery: its
// first list fails, and its second hangs until released.
type cutSource struct {
	release chan struct{} // the second List answers once closed
	listing chan struct{} // closed when the second List is called

	mu    sync.Mutex
	lists int
}

func newCutSource() *cutSource {
	return &cutSource{release: make(chan struct{}), listing: make(chan struct{})}
}

func (s *cutSource) Events(context.Context) (<-chan string, <-chan error) {
	return make(chan string), make(chan error)
}

func (s *cutSource) List(ctx context.Context) ([]Container, error) {
	s.mu.Lock()
	s.lists++
	n := s.lists
	s.mu.Unlock()
	switch n {
	case 1:
		return nil, errors.New("engine went away")
	case 2:
		close(s.listing)
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []Container{cutContainer("fast"), cutContainer("slow")}, nil
}

func (s *cutSource) Inspect(_ context.Context, name string) (Container, error) {
	return cutContainer(name), nil
}

func cutContainer(name string) Container {
	return Container{
		ID: name + "-id", Name: name, Status: StatusStopped, Created: time.Now(), InspectedAt: time.Now(),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": name + ".localhost"},
	}
}

// TestRelistCutShortQueuesEverything: a relist whose session ends before it
// applied its batch reports so, and queues every name it had, so that none
// is lost and discovery is not taken as done.
func TestRelistCutShortQueuesEverything(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	reg := NewRegistry(RegistryConfig{Runtime: newFake(t), Log: log, Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	rc := NewReconciler(ReconcilerConfig{Source: newCutSource(), Registry: reg, Log: log, Prefix: "sleeper"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if rc.relist(ctx, []Container{cutContainer("fast"), cutContainer("slow")}, time.Now()) {
		t.Fatal("a relist cut short reported itself complete")
	}
	if !rc.q.has("fast") || !rc.q.has("slow") {
		t.Fatal("a relist cut short dropped names instead of queueing them")
	}
	if names := reg.Names(); len(names) != 0 {
		t.Fatalf("a relist cut short applied %v", names)
	}
}

// TestSyncedWaitsForACompleteList: a failed first list and a list that
// hangs do not count as discovery. Synced (and /healthz) follows the first
// complete list.
func TestSyncedWaitsForACompleteList(t *testing.T) {
	t.Parallel()
	src := newCutSource()
	log := slog.New(slog.DiscardHandler)
	reg := NewRegistry(RegistryConfig{Runtime: newFake(t), Log: log, Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	health := NewEngineHealth(EngineHealthConfig{})
	rc := NewReconciler(ReconcilerConfig{Source: src, Registry: reg, Log: log, Prefix: "sleeper", Health: health})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = rc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	select {
	case <-src.listing:
	case <-time.After(10 * time.Second):
		t.Fatal("the reconciler never listed again after the stream broke")
	}
	// The second list hangs: discovery is not done, whatever the queue holds.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case <-rc.Synced():
			t.Fatalf("synced after a cut-short list; registry has %v", reg.Names())
		default:
		}
		// The engine has not answered a list yet: still waiting for it.
		if err := health.Check(); !errors.Is(err, ErrEngineWaiting) {
			t.Fatalf("health during discovery: %v, want ErrEngineWaiting", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(src.release)
	select {
	case <-rc.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("never synced after a complete list")
	}
	if got := reg.Names(); !slices.Contains(got, "fast") || !slices.Contains(got, "slow") {
		t.Errorf("registry after sync: %v, want fast and slow", got)
	}
	await.Eventually(t, 5*time.Second, "healthy after sync", func() bool { return health.Check() == nil })
}
