package proxmox

import (
	"testing"

	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/watcher"
)

// TestGuestStats reads memory and CPU from status/current, for both guest
// types: bytes as PVE gives them, PVE's fraction of the guest's CPUs as
// percent of one CPU, and nothing for a stopped guest.
func TestGuestStats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vmid int
		mem  uint64
		cpu  float64
		cpus int
		want watcher.Usage
	}{
		{"lxc default", 101, 0, 0, 0, watcher.Usage{MemoryBytes: pvefake.DefaultMemory}},
		{"lxc busy", 101, 300 << 20, 0.25, 2, watcher.Usage{MemoryBytes: 300 << 20, CPUPercent: 50}},
		{"vm four cores", 120, 2 << 30, 0.5, 4, watcher.Usage{MemoryBytes: 2 << 30, CPUPercent: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, pvefake.Config{})
			f.AddVM("pve1", 120, pvefake.VM{Name: "haos", Addr: vmAddr})
			rt, _ := newRuntime(t, f, -1)
			g := rt.For("pve1", tt.vmid)
			ctx := testContext(t)
			stats, ok := g.(watcher.Stats)
			if !ok {
				t.Fatal("a guest's runtime does not implement watcher.Stats")
			}
			if u, err := stats.Stats(ctx, "", true); err != nil || u != (watcher.Usage{}) {
				t.Fatalf("stopped guest: %+v, %v; want zero", u, err)
			}
			if err := f.SetRunning("pve1", tt.vmid, true); err != nil {
				t.Fatal(err)
			}
			f.SetUsage(tt.vmid, tt.mem, tt.cpu, tt.cpus)
			for _, cpu := range []bool{false, true} {
				u, err := stats.Stats(ctx, "", cpu)
				if err != nil || u != tt.want {
					t.Fatalf("Stats(cpu=%v) = %+v, %v; want %+v", cpu, u, err, tt.want)
				}
			}
		})
	}
}

// TestGuestStatsErrorNamesGuest: a guest that is gone fails the read with
// its vmid in the message.
func TestGuestStatsErrorNamesGuest(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	rt, _ := newRuntime(t, f, -1)
	g := rt.For("pve1", 999)
	_, err := g.(watcher.Stats).Stats(testContext(t), "", false)
	if err == nil {
		t.Fatal("stats of a missing guest succeeded")
	}
	mustContainText(t, err.Error(), "999")
}
