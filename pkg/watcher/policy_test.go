package watcher

import (
	"context"
	"log/slog"
	"sleeper/internal/await"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// statsFake is the one-container fake with engine stats.
type statsFake struct {
	*fakeRuntime
	cpu   atomic.Int64 // percent
	mem   uint64
	reads atomic.Int64
}

func (s *statsFake) Stats(_ context.Context, _ string, _ bool) (Usage, error) {
	s.reads.Add(1)
	return Usage{CPUPercent: float64(s.cpu.Load()), MemoryBytes: s.mem}, nil
}

// postponeRecorder counts postponed sleeps.
type postponeRecorder struct {
	NopRecorder
	mu sync.Mutex
	n  map[string]int
}

func (p *postponeRecorder) SleepPostponed(_, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n[reason]++
}

func (p *postponeRecorder) count(reason string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[reason]
}

// fakeClock runs at real speed from a chosen wall time.
func fakeClock(base time.Time) func() time.Time {
	start := time.Now()
	return func() time.Time { return base.Add(time.Since(start)) }
}

func policyWatcher(t *testing.T, rt Runtime, f *fakeRuntime, spec labels.Spec, now func() time.Time, rec Recorder) *Watcher {
	w := New(Config{Name: "app", Spec: spec, Runtime: rt, Log: slog.New(slog.DiscardHandler),
		Now: now, Location: time.UTC, Recorder: rec})
	t.Cleanup(w.Close)
	f.mu.Lock()
	f.onDie = w.Observe
	c := f.c
	f.mu.Unlock()
	w.Observe(c)
	return w
}

func wakeNow(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustSchedule(t *testing.T, s string) labels.Schedule {
	t.Helper()
	sch, err := labels.ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestWindowKeepsAwakeUntilItEnds: inside a keep-warm window the idle
// timeout does not put the container to sleep; once the window ends it does.
func TestWindowKeepsAwakeUntilItEnds(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	spec := testSpec()
	spec.IdleTimeout = 30 * time.Millisecond
	spec.AwakeDuring = mustSchedule(t, "Mon-Sun 09:00-10:00")
	// The wall clock reads 09:59:59.6: the window ends 400 ms into the test.
	end := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	rec := &postponeRecorder{n: map[string]int{}}
	w := policyWatcher(t, f, f, spec, fakeClock(end.Add(-400*time.Millisecond)), rec)
	wakeNow(t, w)
	if info := w.Info(); !info.InWindow || !info.SleepsAt.IsZero() || info.AwakeDuring != "09:00-10:00" {
		t.Fatalf("info %+v: want in window, no sleep time", info)
	}
	await.HoldsFor(t, 250*time.Millisecond, "awake inside the window", func() bool { return f.count("stop") == 0 })
	if rec.count("schedule") == 0 {
		t.Error("no postponed sleep recorded")
	}
	await.Eventually(t, 3*time.Second, "sleep after the window ends", func() bool { return f.count("stop") == 1 })
	if next := w.Info().NextWindow; !next.Equal(end.Add(23 * time.Hour)) {
		t.Errorf("next window %v", next)
	}
}

// TestWindowStartWakes: an asleep container is woken at a window's start.
func TestWindowStartWakes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	spec := testSpec()
	spec.AwakeDuring = mustSchedule(t, "Mon 09:00-10:00")
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) // a Monday
	w := policyWatcher(t, f, f, spec, fakeClock(start.Add(-100*time.Millisecond)), nil)
	if w.State() != StateAsleep {
		t.Fatalf("state %v", w.State())
	}
	await.Eventually(t, 3*time.Second, "wake at the window's start", func() bool { return w.State() == StateReady && f.count("start") == 1 })
}

// TestBusyGuardPostponesSleep: with busy_cpu, a container using more CPU
// than the threshold is not stopped when its idle time is up; once quiet it is.
func TestBusyGuardPostponesSleep(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	sf := &statsFake{fakeRuntime: f, mem: 64 << 20}
	sf.cpu.Store(80)
	spec := testSpec()
	spec.IdleTimeout = 30 * time.Millisecond
	spec.BusyCPU = 10
	rec := &postponeRecorder{n: map[string]int{}}
	w := policyWatcher(t, sf, f, spec, nil, rec)
	wakeNow(t, w)
	await.Eventually(t, 3*time.Second, "two postponed sleeps", func() bool { return rec.count("busy") >= 2 })
	if f.count("stop") != 0 {
		t.Fatal("stopped while busy")
	}
	sf.cpu.Store(1)
	await.Eventually(t, 5*time.Second, "sleep once quiet", func() bool { return w.State() == StateAsleep && f.count("stop") == 1 })
	if got := w.Info().MemoryFreed; got != 64<<20 {
		t.Errorf("memory freed %d, want the busy check's reading", got)
	}
}

// TestMemoryFreedRead: the memory use is read just before a stop and shown
// while asleep; a pause frees nothing.
func TestMemoryFreedRead(t *testing.T) {
	t.Parallel()
	for _, m := range []labels.StopMethod{labels.StopMethodStop, labels.StopMethodPause} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			sf := &statsFake{fakeRuntime: f, mem: 5 << 20}
			spec := testSpec()
			spec.StopMethod = m
			w := policyWatcher(t, sf, f, spec, nil, nil)
			wakeNow(t, w)
			if err := w.Sleep(context.Background(), "api"); err != nil {
				t.Fatal(err)
			}
			want := uint64(5 << 20)
			if m == labels.StopMethodPause {
				want = 0
			}
			if got := w.Info().MemoryFreed; got != want {
				t.Errorf("memory freed %d, want %d", got, want)
			}
			wakeNow(t, w)
			if got := w.Info().MemoryFreed; got != 0 {
				t.Errorf("awake: memory freed %d, want 0", got)
			}
		})
	}
}

// TestGroupWakesAndSleepsTogether: a wake of one member wakes the others;
// the group sleeps only when every member is idle for its own timeout.
func TestGroupWakesAndSleepsTogether(t *testing.T) {
	t.Parallel()
	eng := newEngineFake()
	lbl := func(name, idle string) map[string]string {
		return map[string]string{"sleeper.enable": "true", "sleeper.idle_timeout": idle, "sleeper.group": "media"}
	}
	a := eng.add("ida", "a", lbl("a", "50ms"))
	b := eng.add("idb", "b", lbl("b", "50ms"))
	c := eng.add("idc", "c", map[string]string{"sleeper.enable": "true"})
	reg := NewRegistry(RegistryConfig{Runtime: eng, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(reg.Close)
	reg.ApplyAll([]Container{a, b, c})
	wa, wb := reg.Get("a"), reg.Get("b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := wa.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 3*time.Second, "b woken with a", func() bool { return wb.State() == StateReady })
	if eng.count("start", "idc") != 0 {
		t.Error("c, not in the group, was started")
	}
	// b has a request open: a's idle time passes, but the group stays up.
	if !wb.Acquire() {
		t.Fatal("b not ready")
	}
	await.HoldsFor(t, 300*time.Millisecond, "a awake while b is active", func() bool {
		return eng.status("ida") == StatusRunning
	})
	wb.Release()
	await.Eventually(t, 3*time.Second, "both asleep", func() bool {
		return eng.status("ida") == StatusStopped && eng.status("idb") == StatusStopped
	})
}
