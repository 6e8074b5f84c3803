package watcher_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

func registry(t *testing.T, e *watchertest.Engine) *watcher.Registry {
	t.Helper()
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: e, Finder: e, Log: slog.New(slog.DiscardHandler),
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	return reg
}

// TestRecreateByNameKeepsTheWatcher: a container recreated under its name
// (new ID, changed labels) keeps its watcher, which takes the new spec; an
// older observation does not undo it, nor does a removal seen before it; a
// container that loses the enable label is forgotten.
func TestRecreateByNameKeepsTheWatcher(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine()
	reg := registry(t, e)
	first := labelled("app")
	first.InspectedAt = time.Now()
	reg.Apply(first)
	w := reg.Get("app")
	if w == nil {
		t.Fatal("app not managed")
	}
	second := labelled("app", "idle_timeout", "5m")
	second.ID, second.Created, second.InspectedAt = "app-id-2", first.Created.Add(time.Second), first.InspectedAt.Add(time.Second)
	reg.Apply(second)
	if reg.Get("app") != w {
		t.Fatal("a recreate by name replaced the watcher")
	}
	if w.Spec().IdleTimeout != 5*time.Minute || w.ID() != "app-id-2" {
		t.Fatalf("after the recreate: idle %s, ID %s; want 5m and app-id-2", w.Spec().IdleTimeout, w.ID())
	}
	reg.Apply(first) // an inspect older than the one applied
	if w.Spec().IdleTimeout != 5*time.Minute || w.ID() != "app-id-2" {
		t.Fatal("an older observation undid the recreate")
	}
	reg.RemoveIfOlder("app", first.InspectedAt) // a relist that began before the recreate
	if reg.Get("app") != w {
		t.Fatal("a removal seen before the recreate forgot it")
	}
	plain := second
	plain.Labels = map[string]string{"other": "x"}
	plain.InspectedAt = second.InspectedAt.Add(time.Second)
	reg.Apply(plain)
	if len(reg.Names()) != 0 || reg.Get("app") != nil {
		t.Fatalf("a container without the enable label is still known: %v", reg.Names())
	}
}

// TestRoutesClaims: hosts (exact and one-label wildcards), listen ports and
// stream ports are claimed by one container each; a younger container
// claiming any of them is not managed and says who holds it.
func TestRoutesClaims(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine()
	reg := registry(t, e)
	owner := labelled("owner", "hosts", "a.localhost,*.wild.localhost", "listen", "18081", "streams", "15432:5432")
	reg.Apply(owner)
	rt := reg.Routes()
	for host, want := range map[string]bool{"a.localhost": true, "x.wild.localhost": true,
		"wild.localhost": false, "x.y.wild.localhost": false, "nodot": false} {
		if got := rt.Lookup(host) != nil; got != want {
			t.Errorf("Lookup(%q) found %v, want %v", host, got, want)
		}
	}
	if rt.Listen[18081] == nil || len(rt.Streams) != 1 {
		t.Fatalf("listen %v, streams %v", rt.Listen, rt.Streams)
	}
	for i, extra := range [][]string{{"hosts", "b.localhost", "listen", "18081"}, {"hosts", "c.localhost", "streams", "15432:5432"}} {
		c := labelled("late"+string(rune('0'+i)), extra...)
		c.Created = owner.Created.Add(time.Second)
		reg.Apply(c)
		var info watcher.Info
		for _, i := range reg.List() {
			if i.Name == c.Name {
				info = i
			}
		}
		if reg.Get(c.Name) != nil || !strings.Contains(info.Error, "already claimed by container owner") {
			t.Errorf("%s claiming %v: managed %v, error %q", c.Name, extra, reg.Get(c.Name) != nil, info.Error)
		}
	}
}

// TestWakeFailsWithoutAddress: a container with HTTP routes whose port is
// neither published nor on a network cannot be proxied to: the wake fails
// and says so; a client that gives up waiting gets its own cause.
func TestWakeFailsWithoutAddress(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine(labelled("app"))
	reg := registry(t, e)
	reg.Apply(e.Container("app"))
	w := reg.Get("app")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := w.Wait(ctx); err == nil || !strings.Contains(err.Error(), "no address for port 80/tcp") {
		t.Fatalf("wake: %v, want no address", err)
	}
	gate := make(chan struct{})
	defer close(gate)
	e.Behave("app", watchertest.Behaviour{Gate: gate})
	e.Update("app", func(c *watcher.Container) { c.Status = watcher.StatusStopped })
	impatient, stop := context.WithCancelCause(t.Context())
	stop(errTest)
	await.Eventually(t, 10*time.Second, "the crash backoff to pass and a new wake to hold", func() bool {
		_, err := w.Wait(impatient)
		return errors.Is(err, errTest) && e.Calls("start", "app") == 2
	})
}

// TestObserveFollowsANewAddress: a ready container observed with another
// published port is proxied to the new one.
func TestObserveFollowsANewAddress(t *testing.T) {
	t.Parallel()
	_, w := lone(t, nil)
	wake(t, w)
	old := w.Upstream().String()
	c := w.Observed()
	c.Published = maps.Clone(c.Published)
	c.Published["80/tcp"] = "127.0.0.1:1"
	c.InspectedAt = time.Now()
	w.Observe(c)
	if got := w.Upstream().String(); got == old || got != "http://127.0.0.1:1" {
		t.Fatalf("upstream %s after a new address (was %s), want http://127.0.0.1:1", got, old)
	}
}
