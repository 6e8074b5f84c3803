package stream

import (
	"errors"
	"io"
	"sleeper/internal/await"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// heldRecorder keeps the last held count a watcher reported, as the
// sleeper_held_requests gauge does.
type heldRecorder struct {
	watcher.NopRecorder
	held atomic.Int64
}

func (r *heldRecorder) Held(_ string, n int) { r.held.Store(int64(n)) }

// TestTCPWaitersCountAgainstMaxHeld: clients waiting for a wake are held
// requests: they show in the held gauge, and one beyond --max-held is
// closed at once while the others get through after the wake.
func TestTCPWaitersCountAgainstMaxHeld(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.TCP, 9000)
	rec := &heldRecorder{}
	w, rt := newWatcherWith(t, "held", startUpstreams(t, ""), []labels.Stream{key}, false,
		func(c *watcher.Config) { c.Recorder = rec })
	gate := rt.hold()
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{MaxHeld: 2})

	a, b := dialStream(t, key), dialStream(t, key)
	await.Eventually(t, 5*time.Second, "two held clients in the gauge", func() bool { return rec.held.Load() == 2 })
	over := dialStream(t, key)
	_ = over.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := over.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("client beyond max-held: read %v, want the connection closed", err)
	}
	if n := rec.held.Load(); n != 2 {
		t.Fatalf("held gauge %d after the refusal, want 2", n)
	}
	close(gate)
	echo(t, a, "first")
	echo(t, b, "second")
	await.Eventually(t, 5*time.Second, "the gauge back to zero", func() bool { return rec.held.Load() == 0 })
}

// TestTCPDataWakeIgnoresBareConnect: with stream_wake=data a connection that
// sends nothing and closes neither starts the container nor counts as
// activity; the first byte of another client wakes it and is relayed.
func TestTCPDataWakeIgnoresBareConnect(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.TCP, 9000)
	w, rt := newWatcherWith(t, "db", startUpstreams(t, ""), []labels.Stream{key}, false,
		func(c *watcher.Config) { c.Spec.StreamWake = labels.StreamWakeData })
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})

	before := w.LastActivity()
	scan := dialStream(t, key)
	quiet := dialStream(t, key) // connected, silent, still open
	scan.Close()
	await.HoldsFor(t, 300*time.Millisecond, "asleep after a bare connect", func() bool { return rt.startCount() == 0 })
	if !w.LastActivity().Equal(before) {
		t.Fatal("a bare connect counted as activity")
	}
	echo(t, dialStream(t, key), "SELECT 1")
	if n := rt.startCount(); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}
	// The silent client, once it speaks, reaches the awake container.
	echo(t, quiet, "late")
}
