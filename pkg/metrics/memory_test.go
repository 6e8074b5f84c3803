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
		cs := make([]watcher.Container, n)
		for i := range n {
			name := fmt.Sprintf("scale0abc-%04d", i)
			cs[i] = watcher.Container{
				ID: fmt.Sprintf("%064x", i), Name: name, Status: watcher.StatusStopped,
				Created: time.Unix(int64(i), 0), InspectedAt: time.Now(), Published: map[string]string{},
				Labels: map[string]string{"scale0abc.enable": "true", "scale0abc.hosts": name + ".localhost", "sleeper.test": "1"},
			}
		}
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
