package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

var _ watcher.Stats = (*Docker)(nil)

// Stats implements watcher.Stats with one stats call, never a stream. For
// memory alone it asks for a one-shot sample (instant). For CPU it asks the
// daemon for a sample with the previous one, which the daemon takes about a
// second apart; a daemon that returns no previous sample gets a second call
// a second later, and the two are compared.
func (d *Docker) Stats(ctx context.Context, id string, cpu bool) (watcher.Usage, error) {
	s, err := d.sample(ctx, id, cpu)
	if err != nil {
		return watcher.Usage{}, err
	}
	u := watcher.Usage{MemoryBytes: memoryInUse(s.MemoryStats)}
	if !cpu {
		return u, nil
	}
	prev := s.PreCPUStats
	if prev.SystemUsage == 0 {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return u, fmt.Errorf("stats of container %s: %w", id, ctx.Err())
		case <-t.C:
		}
		prev = s.CPUStats
		if s, err = d.sample(ctx, id, false); err != nil {
			return u, err
		}
		u.MemoryBytes = memoryInUse(s.MemoryStats)
	}
	u.CPUPercent = cpuPercent(prev, s.CPUStats)
	return u, nil
}

// sample reads one stats document; withPrevious asks the daemon for the
// previous sample too (stream=false without one-shot).
func (d *Docker) sample(ctx context.Context, id string, withPrevious bool) (container.StatsResponse, error) {
	var s container.StatsResponse
	res, err := d.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: withPrevious})
	if err != nil {
		return s, fmt.Errorf("stats of container %s: %w", id, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("stats of container %s: decode: %w", id, err)
	}
	return s, nil
}

// cpuPercent is the CPU use between two samples in percent of one CPU, the
// way docker stats computes it: the container's share of the host's CPU
// time, times the number of CPUs.
func cpuPercent(prev, cur container.CPUStats) float64 {
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(prev.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage) - float64(prev.SystemUsage)
	if cpuDelta <= 0 || sysDelta <= 0 {
		return 0
	}
	cpus := float64(cur.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(max(len(cur.CPUUsage.PercpuUsage), 1))
	}
	return cpuDelta / sysDelta * cpus * 100
}

// memoryInUse is the memory the container uses without the page cache it
// could give back, as docker stats shows it (cgroup v1 and v2 names).
func memoryInUse(m container.MemoryStats) uint64 {
	cache := m.Stats["total_inactive_file"]
	if v, ok := m.Stats["inactive_file"]; ok && cache == 0 {
		cache = v
	}
	if cache > m.Usage {
		return m.Usage
	}
	return m.Usage - cache
}
