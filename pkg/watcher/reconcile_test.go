package watcher

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// cutSource is an engine whose first event stream breaks while the first
// relist is still inspecting, and whose second list hangs until released:
// the shape of an engine that goes away during sleeper's discovery.
type cutSource struct {
	streamErr chan error    // the first session's stream breaks when this yields
	release   chan struct{} // the second List answers once closed
	listing   chan struct{} // closed when the second List is called

	mu    sync.Mutex
	lists int
	broke bool
}

func newCutSource() *cutSource {
	return &cutSource{streamErr: make(chan error, 1), release: make(chan struct{}), listing: make(chan struct{})}
}

func (s *cutSource) Events(context.Context) (<-chan string, <-chan error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists == 0 {
		return make(chan string), s.streamErr
	}
	return make(chan string), make(chan error)
}

func (s *cutSource) List(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	s.lists++
	n := s.lists
	s.mu.Unlock()
	if n == 2 {
		close(s.listing)
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return []string{"fast", "slow"}, nil
}

// Inspect answers "fast" at once; the first relist's inspect of "slow" breaks
// the stream and hangs until its session ends.
func (s *cutSource) Inspect(ctx context.Context, name string) (Container, error) {
	s.mu.Lock()
	breakNow := name == "slow" && !s.broke
	s.broke = s.broke || breakNow
	s.mu.Unlock()
	if breakNow {
		s.streamErr <- errors.New("engine went away")
		<-ctx.Done()
		return Container{}, ctx.Err()
	}
	return Container{
		ID: name + "-id", Name: name, Status: StatusStopped, Created: time.Now(),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": name + ".localhost"},
	}, nil
}

// TestSyncedWaitsForACompleteList: a first relist cut short by a broken
// stream does not count as discovery, and no container it had already
// inspected is lost. Synced (and /healthz) follows the first complete list.
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
		if err := health.Check(); !errors.Is(err, ErrDiscovering) {
			t.Fatalf("health during discovery: %v, want ErrDiscovering", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// What the cut-short relist had inspected is queued again, not dropped:
	// it is known even before the engine lists again.
	eventually(t, 5*time.Second, func() bool { return slices.Contains(reg.Names(), "fast") },
		"the container inspected before the cut to be applied")

	close(src.release)
	select {
	case <-rc.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("never synced after a complete list")
	}
	if got := reg.Names(); !slices.Contains(got, "fast") || !slices.Contains(got, "slow") {
		t.Errorf("registry after sync: %v, want fast and slow", got)
	}
	eventually(t, 5*time.Second, func() bool { return health.Check() == nil }, "healthy after sync")
}
