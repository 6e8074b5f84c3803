package proxmox

import (
	"context"

	"sleeper/pkg/watcher"
)

var _ watcher.Stats = (*Guest)(nil)

// Stats implements watcher.Stats from the guest's status/current, the call
// Inspect makes (VM.Audit, no other privilege): mem for the memory in use,
// and cpu, PVE's fraction of the guest's CPUs over its last sampling
// interval, turned into percent of one CPU as the watcher means it (a
// guest with 4 cores at cpu 0.5 is 200). PVE samples on its own, so one
// call serves with or without cpu. A stopped guest reads 0 and 0.
func (g *Guest) Stats(ctx context.Context, _ string, _ bool) (watcher.Usage, error) {
	var st Status
	err := g.do(ctx, func(node, kind string) (err error) {
		st, err = g.rt.client.status(ctx, kind, node, g.vmid)
		return err
	})
	if err != nil {
		return watcher.Usage{}, g.wrap("stats", err)
	}
	if !st.Running() {
		return watcher.Usage{}, nil
	}
	return watcher.Usage{MemoryBytes: st.Mem, CPUPercent: st.CPU * max(st.CPUs, 1) * 100}, nil
}
