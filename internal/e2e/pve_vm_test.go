package e2e

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"sleeper/internal/await"
	"testing"
	"time"

	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/watcher"
)

var vmAddr = netip.MustParseAddr("127.0.0.3")

func infoError(s *stack, name string) string {
	for _, info := range s.reg.List() {
		if info.Name == name {
			return info.Error
		}
	}
	return ""
}

// TestProxmoxVMStopMethods: each stop method on a VM, through sleeper with
// a stub container: a request wakes it (type found from the cluster), idle
// puts it to sleep by its method, the next request wakes it again.
func TestProxmoxVMStopMethods(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, state, lock string }{
		{"stop", "stopped", ""}, {"kill", "stopped", ""}, {"pause", "paused", ""}, {"hibernate", "stopped", "suspended"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			pve, app := newFakePVE(t)
			pve.AddVM("pve1", 120, pvefake.VM{Name: "haos", Addr: vmAddr, AgentDelay: 200 * time.Millisecond})
			s := startSleeper(t, stackOptions{pve: pve})
			name := uniqueName(t, "haos")
			host := name + ".localhost"
			s.stub(name, "pve1", 120, "hosts", host, "port", app.port, "idle_timeout", "2s", "stop_method", tc.method)
			s.waitState(name, watcher.StateAsleep, 10*time.Second)
			for round := range 2 {
				resp, body := s.get(host, "/")
				if resp.StatusCode != 200 || body != "hello from vm 120\n" {
					t.Fatalf("round %d: got %d %q (%s)", round, resp.StatusCode, body, infoError(s, name))
				}
				await.Eventually(t, 15*time.Second, "asleep by "+tc.method, func() bool {
					return pve.Status("pve1", 120) == tc.state && pve.Lock(120) == tc.lock
				})
				s.waitState(name, watcher.StateAsleep, 5*time.Second)
			}
		})
	}
}

// TestProxmoxVMWithoutAgent: a VM without the guest agent and without
// sleeper.upstream fails its wake, and the error says what to do.
func TestProxmoxVMWithoutAgent(t *testing.T) {
	t.Parallel()
	pve, app := newFakePVE(t)
	pve.AddVM("pve1", 121, pvefake.VM{Name: "win", Addr: vmAddr, NoAgent: true})
	s := startSleeper(t, stackOptions{pve: pve, pveAddrWait: 500 * time.Millisecond})
	name := uniqueName(t, "win")
	host := name + ".localhost"
	s.stub(name, "pve1", 121, "hosts", host, "port", app.port)
	s.watcher(name)
	resp, body := s.get(host, "/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
	}
	mustContain(t, infoError(s, name), "set sleeper.upstream")
	mustContain(t, infoError(s, name), "guest agent")
}

// TestProxmoxLXCAndVMTogether: an LXC and a VM on the same node at once,
// each behind its stub; the VM started in the PVE UI is noticed.
func TestProxmoxLXCAndVMTogether(t *testing.T) {
	t.Parallel()
	pve, app := newFakePVE(t)
	pve.AddLXC("pve1", 105, "jellyfin", netip.MustParseAddr("127.0.0.2"))
	pve.AddVM("pve1", 120, pvefake.VM{Name: "haos", Addr: vmAddr})
	s := startSleeper(t, stackOptions{pve: pve})
	ct, vm := uniqueName(t, "ct"), uniqueName(t, "vm")
	s.stub(ct, "pve1", 105, "hosts", ct+".localhost", "port", app.port, "idle_timeout", "2s")
	s.stub(vm, "pve1", 120, "hosts", vm+".localhost", "port", app.port, "idle_timeout", "2s",
		"proxmox.type", "qemu", "stop_method", "hibernate")
	s.waitState(ct, watcher.StateAsleep, 10*time.Second)
	s.waitState(vm, watcher.StateAsleep, 10*time.Second)
	done := make(chan string, 2)
	for _, h := range []string{ct, vm} {
		go func() {
			resp, body := s.get(h+".localhost", "/")
			done <- http.StatusText(resp.StatusCode) + " " + body
		}()
	}
	got := map[string]bool{<-done: true, <-done: true}
	if !got["OK hello from lxc 105\n"] || !got["OK hello from vm 120\n"] {
		t.Fatalf("answers %v", got)
	}
	await.Eventually(t, 15*time.Second, "both asleep", func() bool {
		return pve.Status("pve1", 105) == "stopped" && pve.Status("pve1", 120) == "stopped"
	})
	s.waitState(vm, watcher.StateAsleep, 5*time.Second)
	starts := pve.Calls(pvefake.EndpointStart)
	if err := pve.SetRunning("pve1", 120, true); err != nil {
		t.Fatal(err)
	}
	s.waitState(vm, watcher.StateReady, 10*time.Second)
	if pve.Calls(pvefake.EndpointStart) != starts {
		t.Fatal("sleeper started a VM that was started in the PVE UI")
	}
}

// TestProxmoxRealNode: an LXC on a real node's terms at once: no
// /interfaces (old pve-container), a stale resource list, HA-managed with
// the HA manager's delay, migrated away from the node its label names, and
// ignoring shutdowns. It wakes on a request and goes to sleep when idle.
func TestProxmoxRealNode(t *testing.T) {
	t.Parallel()
	pve, app := newFakePVE(t)
	pve.AddLXC("pve1", 107, "app", netip.MustParseAddr("127.0.0.2"))
	pve.AddLXC("pve1", 108, "other", netip.MustParseAddr("127.0.0.4"))
	pve.SetRealNode(pvefake.RealNode{
		NoInterfaces: true, LastAddressOnly: true, ResourcesRefresh: time.Second,
		HADelay: 500 * time.Millisecond, Second: 20 * time.Millisecond,
	})
	s := startSleeper(t, stackOptions{pve: pve})
	name := uniqueName(t, "real")
	host := name + ".localhost"
	s.stub(name, "pve1", 107, "hosts", host, "port", app.port, "idle_timeout", "2s")
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	pve.Migrate(107, "pve2")
	pve.SetHA(107, true)
	// The resource list shows the move only at its next refresh, as on a
	// real node: until then the wake would fail and be retried.
	await.Eventually(t, 10*time.Second, "resources refreshed", func() bool { return resourceNode(t, pve, 107) == "pve2" })
	resp, body := s.get(host, "/")
	if resp.StatusCode != 200 || body != "hello from lxc 107\n" {
		t.Fatalf("got %d %q (%s)", resp.StatusCode, body, infoError(s, name))
	}
	await.Eventually(t, 15*time.Second, "idle HA stop", func() bool { return pve.Status("pve2", 107) == "stopped" })
	s.waitState(name, watcher.StateAsleep, 5*time.Second)

	// Out of HA, a guest that ignores shutdown is stopped at the timeout.
	pve.SetHA(107, false)
	pve.HangShutdown("pve2", 107, true)
	resp, _ = s.get(host, "/")
	if resp.StatusCode != 200 {
		t.Fatalf("second wake: %d (%s)", resp.StatusCode, infoError(s, name))
	}
	await.Eventually(t, 15*time.Second, "forced stop", func() bool { return pve.Status("pve2", 107) == "stopped" })
	if f := pve.LastForm(pvefake.EndpointShutdown); f.Get("forceStop") != "1" {
		t.Fatalf("shutdown form %v", f)
	}
}

// resourceNode reads the node /cluster/resources gives a vmid.
func resourceNode(t *testing.T, pve *pvefake.Server, vmid int) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", pve.URL()+"/api2/json/cluster/resources?type=vm", nil)
	req.Header.Set("Authorization", "PVEAPIToken="+pve.TokenID()+"="+pve.Secret())
	resp, err := pve.Client().Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var env struct {
		Data []struct {
			VMID int    `json:"vmid"`
			Node string `json:"node"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	for _, r := range env.Data {
		if r.VMID == vmid {
			return r.Node
		}
	}
	return ""
}
