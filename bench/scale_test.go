package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
)

// TestScale creates SLEEPER_BENCH_CONTAINERS (default 100) labelled
// containers that are only created, never started, then starts the sleeper
// binary and reports: discovery time (start → /healthz "ok"), resident
// memory, and CPU used over SLEEPER_BENCH_IDLE (default 30s) of idling.
func TestScale(t *testing.T) {
	benchOnly(t)
	n := 100
	if v, err := strconv.Atoi(os.Getenv("SLEEPER_BENCH_CONTAINERS")); err == nil && v > 0 {
		n = v
	}
	idle := 30 * time.Second
	if v, err := time.ParseDuration(os.Getenv("SLEEPER_BENCH_IDLE")); err == nil {
		idle = v
	}
	cli := dockertest.Client(t)
	img := dockertest.Image(t)
	prefix := "scale" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("%s-%04d", prefix, i)
			res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
				Name: name,
				Config: &container.Config{Image: img, Labels: map[string]string{
					prefix + ".enable": "true", prefix + ".hosts": name + ".localhost",
					dockertest.LabelKey: "1",
				}},
			})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = res.ID
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, id := range ids {
			if id != "" {
				_, _ = cli.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
			}
		}
	})
	if t.Failed() {
		return
	}
	bin := buildSleeper(t)
	t0 := time.Now()
	s := startSleeperBinary(t, bin, "--label-prefix", prefix)
	s.prefix = prefix
	s.poll(t, 60*time.Second, func() bool { return s.healthz() == "ok" }, "discovery")
	discovery := time.Since(t0)
	if got := len(s.containers(t)); got != n {
		t.Fatalf("managing %d containers, want %d", got, n)
	}
	pid := s.cmd.Process.Pid
	g0 := s.goroutines(t) // before the CPU window: a scrape of 1,000 containers is not idling
	rss0, cpu0 := procStat(t, pid)
	time.Sleep(idle) // the measurement is of idling
	rss1, cpu1 := procStat(t, pid)
	g1 := s.goroutines(t)
	// After the CPU window, which a scrape would disturb.
	heap := s.gauges(t, "go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes")
	fmt.Printf("scale: %d containers: discovery %s, RSS %.1f MB after discovery, %.1f MB after %s idle, idle CPU %.3f%% of a core, goroutines %d → %d\n",
		n, discovery.Round(time.Millisecond), float64(rss0)/1e6, float64(rss1)/1e6, idle,
		100*float64(cpu1-cpu0)/float64(idle), g0, g1)
	fmt.Printf("scale: after three scrapes: Go heap in use %.1f MB, next GC at %.1f MB, obtained from the OS %.1f MB\n",
		heap[0]/1e6, heap[1]/1e6, heap[2]/1e6)
}
