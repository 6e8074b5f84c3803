package watcher

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

type statsRuntime struct {
	Runtime
	u Usage
}

func (s statsRuntime) Stats(context.Context, string, bool) (Usage, error) { return s.u, nil }

// TestEngineWrapperPassesStats: a named engine's runtime is wrapped; its
// usage must still reach the busy guard and the memory freed by a sleep.
func TestEngineWrapperPassesStats(t *testing.T) {
	t.Parallel()
	for _, rt := range []Runtime{statsRuntime{u: Usage{MemoryBytes: 42}}} {
		s, ok := wrapEngine("d2", rt, nil).(Stats)
		if !ok {
			t.Fatal("the wrapped runtime hides Stats")
		}
		if u, err := s.Stats(context.Background(), "id", false); err != nil || u.MemoryBytes != 42 {
			t.Fatalf("Stats = %+v, %v; want 42 bytes", u, err)
		}
	}
	// Callers find Stats by type assertion: a runtime without it must not
	// seem to have it behind the wrapper (the busy guard would then try and
	// fail on every idle check).
	for _, rt := range []Runtime{newFake(t), &execFake{fakeRuntime: newFake(t)}} {
		if _, ok := wrapEngine("d2", rt, nil).(Stats); ok {
			t.Fatalf("%T without stats claims Stats behind the wrapper", rt)
		}
	}
	if _, ok := wrapEngine("d2", execStatsFake{&execFake{fakeRuntime: newFake(t)}}, nil).(Execer); !ok {
		t.Fatal("a runtime with exec and stats lost Exec behind the wrapper")
	}
}

// TestEngineWrapperFailsFastWhileDown: while an engine is down every call of
// its runtime fails at once with an EngineError naming it, without reaching
// the engine; once up, calls go through.
func TestEngineWrapperFailsFastWhileDown(t *testing.T) {
	t.Parallel()
	f := execStatsFake{&execFake{fakeRuntime: newFake(t)}}
	health := NewEngineHealth(EngineHealthConfig{Engine: "d2 engine"})
	health.EngineDown(errors.New("connection refused"))
	rt := wrapEngine("d2", f, health)
	ctx := context.Background()
	calls := map[string]func() error{
		"start":   func() error { return rt.Start(ctx, "c1") },
		"stop":    func() error { return rt.Stop(ctx, "c1", StopOptions{}) },
		"kill":    func() error { return rt.Kill(ctx, "c1", "SIGKILL") },
		"pause":   func() error { return rt.Pause(ctx, "c1") },
		"unpause": func() error { return rt.Unpause(ctx, "c1") },
		"inspect": func() error { _, err := rt.Inspect(ctx, "c1"); return err },
		"exec":    func() error { _, err := rt.(Execer).Exec(ctx, "c1", []string{"/healthcheck.sh"}); return err },
		"stats":   func() error { _, err := rt.(Stats).Stats(ctx, "c1", false); return err },
	}
	for op, call := range calls {
		var ee *EngineError
		if err := call(); !errors.As(err, &ee) || ee.Engine != "d2" {
			t.Errorf("%s while down: %v, want an EngineError naming d2", op, err)
		}
		if n := f.count(op) + int(f.execs.Load()); n != 0 {
			t.Errorf("%s reached the engine %d times while it was down", op, n)
		}
	}
	health.EngineUp()
	for _, op := range []string{"start", "pause", "unpause", "stop", "kill", "inspect", "exec"} {
		if err := calls[op](); err != nil {
			t.Errorf("%s while up: %v", op, err)
		}
	}
	if health.Name() != "d2 engine" {
		t.Errorf("health name %q", health.Name())
	}
}

// TestReleaseQuietLeavesActivity: an ignored request (an uptime monitor)
// holds the container while it runs, but its end is not activity; an
// ordinary request's end is.
func TestReleaseQuietLeavesActivity(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, testSpec())
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, quiet := range []bool{true, false} {
		if !w.Acquire() {
			t.Fatal("not ready")
		}
		stamped := w.lastActivity.Load()
		// Activity is stamped at millisecond grain: let the clock move on.
		for monoNow()-stamped < int64(2*time.Millisecond) {
			runtime.Gosched()
		}
		if quiet {
			w.ReleaseQuiet()
		} else {
			w.Release()
		}
		moved := w.lastActivity.Load() != stamped
		if w.InFlight() != 0 || moved == quiet {
			t.Fatalf("quiet=%v: in flight %d, activity moved %v", quiet, w.InFlight(), moved)
		}
	}
}

// TestMergePeersIsTransitive: a group member that is also a stub of a
// shared workload joins both sets into one: they all sleep together.
func TestMergePeersIsTransitive(t *testing.T) {
	t.Parallel()
	shared := map[string][]string{"s1": {"s1", "s2"}, "s2": {"s1", "s2"}}
	group := map[string][]string{"s2": {"g1", "s2"}, "g1": {"g1", "s2"}}
	got := mergePeers(shared, group)
	want := []string{"g1", "s1", "s2"}
	for _, n := range want {
		if !slices.Equal(got[n], want) {
			t.Errorf("peers of %s = %v, want %v", n, got[n], want)
		}
	}
	if got := mergePeers(shared, nil); !slices.Equal(got["s1"], shared["s1"]) {
		t.Errorf("merge with nothing changed the set: %v", got)
	}
	if got := mergePeers(nil, group); !slices.Equal(got["g1"], group["g1"]) {
		t.Errorf("merge into nothing changed the set: %v", got)
	}
}

// TestAnswerSetHeader: Retry-After is written only when the answer has one.
func TestAnswerSetHeader(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	Answer{Status: http.StatusServiceUnavailable, RetryAfter: 3}.SetHeader(h)
	if h.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q, want 3", h.Get("Retry-After"))
	}
	h = http.Header{}
	Answer{Status: http.StatusBadGateway}.SetHeader(h)
	if _, ok := h["Retry-After"]; ok {
		t.Fatal("Retry-After set without a delay")
	}
}

// execStatsFake can exec and read usage.
type execStatsFake struct{ *execFake }

func (f execStatsFake) Stats(context.Context, string, bool) (Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["stats"]++
	return Usage{MemoryBytes: 1}, nil
}

// ctxStart is a runtime whose start waits for a gate and fails if its
// context ends first, as a real start task does.
type ctxStart struct {
	Runtime
	began chan struct{}
	once  *sync.Once
	gate  chan struct{}
}

func (c ctxStart) Inspect(context.Context, string) (Container, error) {
	return Container{Status: StatusStopped}, nil
}

func (c ctxStart) Start(ctx context.Context, _ string) error {
	c.once.Do(func() { close(c.began) })
	select {
	case <-c.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestSharedStartOutlivesItsFirstCaller: the stub that asked first for a
// shared start may go away (its watcher closed); the start goes on for the
// others.
func TestSharedStartOutlivesItsFirstCaller(t *testing.T) {
	t.Parallel()
	rt := ctxStart{began: make(chan struct{}), once: &sync.Once{}, gate: make(chan struct{})}
	g := &sharedRuntime{Runtime: rt}
	first, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() { firstDone <- g.Start(first, "guest") }()
	<-rt.began
	second := make(chan error, 1)
	go func() { second <- g.Start(context.Background(), "guest") }()
	cancel() // the first stub goes away mid-start
	close(rt.gate)
	if err := <-second; err != nil {
		t.Fatalf("the other stub's start: %v, want it to finish", err)
	}
	if err := <-firstDone; err != nil {
		t.Fatalf("the shared start was cancelled with its first caller: %v", err)
	}
}
