package watcher

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// TestStaleObservationsAfterOwnActions: an inspect that began before
// sleeper's own stop, pause or unpause finished reports an old state; it
// must neither wake a container that just slept nor put a woken one to sleep.
func TestStaleObservationsAfterOwnActions(t *testing.T) {
	t.Parallel()
	for _, m := range []labels.StopMethod{labels.StopMethodStop, labels.StopMethodPause} {
		t.Run("running after "+string(m), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			spec := testSpec()
			spec.StopMethod = m
			w := newTestWatcher(t, f, spec)
			if _, err := w.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			stale, _ := f.Inspect(context.Background(), "c1") // a reconcile's inspect: running
			if err := w.Sleep(context.Background(), "idle"); err != nil {
				t.Fatal(err)
			}
			starts, unpauses := f.count("start"), f.count("unpause")
			w.Observe(stale) // delivered late
			if w.State() != StateAsleep || f.count("start") != starts || f.count("unpause") != unpauses {
				t.Fatalf("a stale observation woke the container: state %s", w.State())
			}
		})
	}
	t.Run("paused after unpause", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		spec := testSpec()
		spec.StopMethod = labels.StopMethodPause
		w := newTestWatcher(t, f, spec)
		if _, err := w.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := w.Sleep(context.Background(), "idle"); err != nil {
			t.Fatal(err)
		}
		stale, _ := f.Inspect(context.Background(), "c1") // paused
		if _, err := w.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.Observe(stale)
		if w.State() != StateReady {
			t.Fatalf("a stale observation put a running container to %s", w.State())
		}
	})
}

// TestRoutelessDependencyIsProbedByTCP: a managed container with no HTTP
// routes (a database that is only a dependency) is ready when its port
// accepts, even though it does not speak HTTP.
func TestRoutelessDependencyIsProbedByTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				b := make([]byte, 512)
				_, _ = c.Read(b)
				_, _ = c.Write([]byte("-ERR unknown command 'GET'\r\n"))
				_ = c.Close()
			}()
		}
	}()
	f := newFake(t)
	f.c.Published = map[string]string{"6379/tcp": ln.Addr().String()}
	f.c.Exposed = []uint16{6379}
	spec := testSpec()
	spec.Hosts = nil
	spec.WakeTimeout = 2 * time.Second
	w := newTestWatcher(t, f, spec)
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatalf("a listening non-HTTP dependency never became ready: %v", err)
	}
}

// TestListedObservationsOrderedByTime: the engine's list gives no start
// times. A list entry made after the last observation is news (a stop by
// hand seen at a relist after an outage); one made before it is not.
func TestListedObservationsOrderedByTime(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, testSpec())
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := w.Observed()
	listed := Container{ID: seen.ID, Name: seen.Name, Labels: seen.Labels, Status: StatusRunning}

	older := listed
	older.Status = StatusStopped
	older.InspectedAt = seen.InspectedAt.Add(-time.Millisecond)
	w.Observe(older)
	if w.State() != StateReady {
		t.Fatalf("an older list entry put the container to %s", w.State())
	}

	newer := listed
	newer.Status = StatusStopped
	newer.InspectedAt = time.Now()
	w.Observe(newer)
	if w.State() != StateAsleep {
		t.Fatalf("a newer list entry showing a stop left the container %s", w.State())
	}
}

// TestListedEntryKeepsInspectedConfig: the list carries no health check; a
// list entry of a container an inspect already read keeps its check, and a
// container only ever listed says its check is read at the first wake.
func TestListedEntryKeepsInspectedConfig(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, testSpec())
	inspected := w.Observed()
	inspected.Check = &HealthCheck{Test: []string{"CMD", "curl", "-f", "http://localhost:8080/health"}}
	inspected.InspectedAt = time.Now()
	w.Observe(inspected)
	listed := Container{ID: inspected.ID, Name: inspected.Name, Labels: inspected.Labels,
		Status: inspected.Status, Listed: true, InspectedAt: time.Now()}
	w.Observe(listed)
	if got := w.Info().Readiness; got != "healthcheck-url http://localhost:8080/health" {
		t.Fatalf("readiness after a list entry: %q, want the inspected health URL", got)
	}

	fresh := newTestWatcher(t, newFake(t), testSpec())
	listed.ID = "other"
	fresh.Observe(listed)
	if got := fresh.Info().Readiness; !strings.Contains(got, "read at the first wake") {
		t.Fatalf("readiness of a container only listed: %q", got)
	}
}
