package proxmox

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/watcher"
)

var vmAddr = netip.MustParseAddr("127.0.0.3")

func vmRuntime(t *testing.T, f *pvefake.Server, stubs ...Stub) *Runtime {
	t.Helper()
	rt, _ := newRuntime(t, f, 2*time.Second)
	rt.SetStubs(func(string, int) []Stub { return stubs })
	return rt
}

// Every stop method of a VM, and its wake: the type is found in the
// cluster's resource list, not configured.
func TestVMStopMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method    labels.StopMethod
		sleep     func(g watcher.Runtime) error
		wantState string
		wantLock  string
		endpoint  string
	}{
		{labels.StopMethodStop, func(g watcher.Runtime) error {
			return g.Stop(t.Context(), "", watcher.StopOptions{Timeout: time.Second})
		}, "stopped", "", pvefake.EndpointShutdown},
		{labels.StopMethodKill, func(g watcher.Runtime) error { return g.Kill(t.Context(), "", "") }, "stopped", "", pvefake.EndpointStop},
		{labels.StopMethodPause, func(g watcher.Runtime) error { return g.Pause(t.Context(), "") }, "paused", "", pvefake.EndpointSuspend},
		{labels.StopMethodHibernate, func(g watcher.Runtime) error {
			return g.Stop(t.Context(), "", watcher.StopOptions{Timeout: time.Second})
		}, "stopped", "suspended", pvefake.EndpointSuspend},
	}
	for _, tt := range tests {
		t.Run(string(tt.method), func(t *testing.T) {
			t.Parallel()
			f := newFake(t, pvefake.Config{})
			f.AddVM("pve1", 120, pvefake.VM{Name: "haos", Addr: vmAddr, AgentDelay: 200 * time.Millisecond})
			g := vmRuntime(t, f, Stub{Container: "ha", StopMethod: tt.method}).For("pve1", 120)
			if err := g.Start(testContext(t), ""); err != nil {
				t.Fatalf("start: %v", err)
			}
			if a, ok := mustInspectAddr(t, g); !ok || a != vmAddr {
				t.Fatalf("address from the agent %v %v", a, ok)
			}
			if err := tt.sleep(g); err != nil {
				t.Fatalf("sleep: %v", err)
			}
			if st := f.Status("pve1", 120); st != tt.wantState || f.Lock(120) != tt.wantLock {
				t.Fatalf("after %s: %s lock %q", tt.method, st, f.Lock(120))
			}
			if f.Calls(tt.endpoint) != 1 {
				t.Fatalf("%s not called", tt.endpoint)
			}
			c, err := g.Inspect(testContext(t), "")
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]watcher.Status{"paused": watcher.StatusPaused, "stopped": watcher.StatusStopped}[tt.wantState]; c.Status != want {
				t.Fatalf("inspect status %s, want %s", c.Status, want)
			}
			wake := g.Start
			if c.Status == watcher.StatusPaused {
				wake = g.Unpause
			}
			if err := wake(testContext(t), ""); err != nil {
				t.Fatalf("wake: %v", err)
			}
			if st := f.Status("pve1", 120); st != "running" || f.Lock(120) != "" {
				t.Fatalf("after the wake: %s lock %q", st, f.Lock(120))
			}
		})
	}
}

// A VM without the guest agent and without sleeper.upstream fails its wake
// with an error that says what to do; with sleeper.upstream it wakes.
func TestVMWithoutAgent(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddVM("pve1", 121, pvefake.VM{Name: "win", NoAgent: true})
	rt, _ := newRuntime(t, f, 300*time.Millisecond)
	err := rt.For("pve1", 121).Start(testContext(t), "")
	if !errors.Is(err, ErrNoVMAddress) {
		t.Fatalf("err %v, want ErrNoVMAddress", err)
	}
	mustContainText(t, err.Error(), "set sleeper.upstream")
	mustContainText(t, err.Error(), "guest agent")

	f.AddVM("pve1", 122, pvefake.VM{Name: "win2", NoAgent: true})
	rt2 := vmRuntime(t, f, Stub{Container: "win2", Upstream: true})
	if err := rt2.For("pve1", 122).Start(testContext(t), ""); err != nil {
		t.Fatalf("with an upstream: %v", err)
	}
}

// Labels that do not fit the guest's real type are config errors naming
// the container, the label and its value.
func TestGuestTypeConfigErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddVM("pve1", 120, pvefake.VM{Name: "vm", Addr: vmAddr})
	tests := []struct {
		name  string
		vmid  int
		stub  Stub
		label string
	}{
		{"lxc label on a vm", 120, Stub{Container: "a", Type: TypeLXC}, "sleeper.proxmox.type=lxc"},
		{"qemu label on an lxc", 101, Stub{Container: "b", Type: TypeQEMU}, "sleeper.proxmox.type=qemu"},
		{"hibernate on an lxc", 101, Stub{Container: "c", StopMethod: labels.StopMethodHibernate}, "sleeper.stop_method=hibernate"},
		{"pause on an lxc", 101, Stub{Container: "d", StopMethod: labels.StopMethodPause}, "sleeper.stop_method=pause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := vmRuntime(t, f, tt.stub).For("pve1", tt.vmid)
			_, err := g.Inspect(testContext(t), "")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err %v, want a ConfigError", err)
			}
			mustContainText(t, err.Error(), "container "+tt.stub.Container)
			mustContainText(t, err.Error(), tt.label)
			if err := g.Start(testContext(t), ""); !errors.As(err, &ce) {
				t.Fatalf("start: %v, want a ConfigError", err)
			}
		})
	}
}

// Hibernate needs VM.Config.Disk and Datastore.AllocateSpace besides
// VM.PowerMgmt: a token without says which one it lacks.
func TestVMHibernatePermission(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddVM("pve1", 120, pvefake.VM{Name: "vm", Addr: vmAddr})
	if err := f.SetRunning("pve1", 120, true); err != nil {
		t.Fatal(err)
	}
	f.Deny(pvefake.EndpointSuspend, "VM.Config.Disk")
	g := vmRuntime(t, f, Stub{Container: "vm", StopMethod: labels.StopMethodHibernate}).For("pve1", 120)
	err := g.Stop(testContext(t), "", watcher.StopOptions{Timeout: time.Second})
	mustContainText(t, errString(err), "lacks the privilege VM.Config.Disk")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
