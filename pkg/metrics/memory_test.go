package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// BenchmarkMemory1000 measures what 1,000 stopped containers cost, as the
// scale bench discovers them: the heap kept per container by the registry,
// its watchers and the recorder (retained-B/container), and the garbage one
// /metrics scrape makes (scrape-B). Profile the retained part with
// -memprofile and -memprofilerate=1.
func BenchmarkMemory1000(b *testing.B) {
	const n = 1000
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for b.Loop() {
		cs := scaleContainers(n)
		h0 := heapAlloc()
		rec := New(Config{Version: "bench"})
		reg := watcher.NewRegistry(watcher.RegistryConfig{Log: log, Recorder: rec,
			Labels: labels.Options{Prefix: "scale0abc", DefaultIdleTimeout: 15 * time.Minute}})
		rec.Watch(reg)
		reg.ApplyAll(cs)
		h1 := heapAlloc()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		rw := httptest.NewRecorder()
		rec.Handler(log).ServeHTTP(rw, httptest.NewRequest("GET", "/metrics", nil))
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(h1-h0)/n, "retained-B/container")
		b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc), "scrape-B")
		reg.Close()
		runtime.KeepAlive(cs)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryBounds keeps what 1,000 containers cost from creeping back: the
// heap kept per container (6.9 KB with a prometheus child per counter, 2.5 KB
// now) and the garbage of one gather (8.9 MB through const metrics, 4.9 MB
// now). The bounds leave room for the watcher to grow a little.
func TestMemoryBounds(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("heap measurement")
	}
	const n = 1000
	cs := scaleContainers(n)
	log := slog.New(slog.DiscardHandler)
	h0 := heapAlloc()
	rec := New(Config{Version: "test"})
	reg := watcher.NewRegistry(watcher.RegistryConfig{Log: log, Recorder: rec,
		Labels: labels.Options{Prefix: "scale0abc", DefaultIdleTimeout: 15 * time.Minute}})
	t.Cleanup(reg.Close)
	rec.Watch(reg)
	reg.ApplyAll(cs)
	perContainer := float64(heapAlloc()-h0) / n
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if _, err := rec.Gatherer().Gather(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	gather := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("%.0f B kept per container, %d B allocated by one gather", perContainer, gather)
	if perContainer > 4000 {
		t.Errorf("%.0f B kept per container, want at most 4000", perContainer)
	}
	if gather > 7<<20 {
		t.Errorf("one gather of %d containers allocates %d B, want at most 7 MiB", n, gather)
	}
	runtime.KeepAlive(cs)
}

// scaleContainers are n stopped containers labelled as bench/scale.sh's are.
func scaleContainers(n int) []watcher.Container {
	cs := make([]watcher.Container, n)
	for i := range n {
		name := fmt.Sprintf("scale0abc-%04d", i)
		cs[i] = watcher.Container{
			ID: fmt.Sprintf("%064x", i), Name: name, Status: watcher.StatusStopped,
			Created: time.Unix(int64(i), 0), InspectedAt: time.Now(), Published: map[string]string{},
			Labels: map[string]string{"scale0abc.enable": "true", "scale0abc.hosts": name + ".localhost", "sleeper.test": "1"},
		}
	}
	return cs
}
