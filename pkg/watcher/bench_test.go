package watcher_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// BenchmarkAcquireRelease is the per-request cost for a ready container.
func BenchmarkAcquireRelease(b *testing.B) {
	_, w := lone(b, nil)
	wake(b, w)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !w.Acquire() {
				b.Fatal("not ready")
			}
			w.Release()
		}
	})
}

// BenchmarkRoutesLookup is the host lookup among 1,000 containers.
func BenchmarkRoutesLookup(b *testing.B) {
	reg := watcher.NewRegistry(watcher.RegistryConfig{Log: slog.New(slog.DiscardHandler)})
	b.Cleanup(reg.Close)
	for i := range 1000 {
		name := fmt.Sprintf("app%04d", i)
		reg.Apply(watcher.Container{ID: name, Name: name, Status: watcher.StatusStopped, Created: time.Unix(int64(i), 0),
			Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": name + ".example.com"}})
	}
	reg.Apply(watcher.Container{ID: "wild", Name: "wild", Status: watcher.StatusStopped, Created: time.Unix(5000, 0),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "*.wild.example.com"}})
	rt := reg.Routes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			if rt.Lookup("app0500.example.com") == nil {
				b.Fatal("no route")
			}
		} else if rt.Lookup("x.wild.example.com") == nil {
			b.Fatal("no wildcard route")
		}
	}
}
