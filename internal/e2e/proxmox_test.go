package e2e

import (
	"sleeper/internal/await"

	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"sleeper/internal/dockertest"
	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/watcher"
)

// lxcApp is the app "inside" a fake LXC: an HTTP server on 127.0.0.2 that
// the fake PVE starts and stops with the guest.
type lxcApp struct {
	t    *testing.T
	port string
	mu   sync.Mutex
	srv  map[int]*http.Server // by vmid: one app per guest
}

func (a *lxcApp) start(g pvefake.Guest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ln, err := net.Listen("tcp", net.JoinHostPort(g.Addr.String(), a.port))
	if err != nil {
		return err
	}
	word := "lxc"
	if g.Type == "qemu" {
		word = "vm"
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(rw, "hello from %s %d\n", word, g.VMID)
	}), ReadHeaderTimeout: time.Second}
	if a.srv == nil {
		a.srv = map[int]*http.Server{}
	}
	a.srv[g.VMID] = srv
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// stop stops the guest's app; the zero Guest stops every app.
func (a *lxcApp) stop(g pvefake.Guest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for vmid, srv := range a.srv {
		if g.VMID == 0 || g.VMID == vmid {
			_ = srv.Close()
			delete(a.srv, vmid)
		}
	}
}

func newFakePVE(t *testing.T) (*pvefake.Server, *lxcApp) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()
	app := &lxcApp{t: t, port: port}
	pve := pvefake.New(pvefake.Config{
		UnauthorizedDelay: 20 * time.Millisecond, TaskDelay: 100 * time.Millisecond,
		OnStart: app.start, OnStop: app.stop,
	})
	t.Cleanup(pve.Close)
	t.Cleanup(func() { app.stop(pvefake.Guest{}) })
	return pve, app
}

// stub creates the stub container that configures an LXC: only created,
// never started, from the test image.
func (s *stack) stub(name string, node string, vmid int, kv ...string) string {
	s.t.Helper()
	labels := s.labels(append([]string{"proxmox.node", node, "proxmox.vmid", strconv.Itoa(vmid)}, kv...)...)
	return dockertest.Run(s.t, s.cli, dockertest.Spec{Name: name, Image: dockertest.Image(s.t), Labels: labels})
}

// TestProxmoxLXC: a stub container drives an LXC through the PVE API: a
// request starts the guest and reaches its app on the guest's address; idle
// shuts it down; a start in the PVE UI is noticed; the stub is never started.
func TestProxmoxLXC(t *testing.T) {
	t.Parallel()
	pve, app := newFakePVE(t)
	pve.AddLXC("pve1", 105, "jellyfin", netip.MustParseAddr("127.0.0.2"))
	s := startSleeper(t, stackOptions{pve: pve})
	name := uniqueName(t, "jellyfin")
	host := name + ".localhost"
	stubID := s.stub(name, "pve1", 105, "hosts", host, "port", app.port, "idle_timeout", "2s")
	s.waitState(name, watcher.StateAsleep, 10*time.Second)

	resp, body := s.get(host, "/")
	if resp.StatusCode != 200 || body != "hello from lxc 105\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sleeper-Wake") == "" {
		t.Fatal("no X-Sleeper-Wake after the LXC start")
	}
	if pve.Calls(pvefake.EndpointStart) != 1 {
		t.Fatalf("%d start calls, want 1", pve.Calls(pvefake.EndpointStart))
	}
	var provider string
	for _, info := range s.reg.List() {
		if info.Name == name {
			provider = info.Provider
		}
	}
	if provider != "proxmox" {
		t.Fatalf("provider %q, want proxmox", provider)
	}
	await.Eventually(t, 15*time.Second, "idle shutdown", func() bool { return pve.Status("pve1", 105) == "stopped" })
	if pve.Calls(pvefake.EndpointShutdown) != 1 {
		t.Fatalf("%d shutdown calls, want 1", pve.Calls(pvefake.EndpointShutdown))
	}
	if form := pve.LastForm(pvefake.EndpointShutdown); form.Get("timeout") != "10" {
		t.Fatalf("shutdown timeout %q, want the stop_timeout 10", form.Get("timeout"))
	}
	s.waitState(name, watcher.StateAsleep, 5*time.Second)

	// Started in the PVE UI: noticed by the poller, awake without a start call.
	if err := pve.SetRunning("pve1", 105, true); err != nil {
		t.Fatal(err)
	}
	s.waitState(name, watcher.StateReady, 10*time.Second)
	if pve.Calls(pvefake.EndpointStart) != 1 {
		t.Fatal("sleeper started a guest that was started outside it")
	}
	if st := s.inspect(stubID); st.Running || st.Status != "created" {
		t.Fatalf("the stub container was touched: %s", st.Status)
	}
}

// TestProxmoxFailuresAreFast: a wrong token or a missing guest fails the
// wake with 502 within seconds, PVE's reason in the admin API only, and
// sleeper keeps going.
func TestProxmoxFailuresAreFast(t *testing.T) {
	t.Parallel()
	pve, app := newFakePVE(t)
	pve.AddLXC("pve1", 106, "app", netip.MustParseAddr("127.0.0.2"))
	cases := []struct {
		name, secret string
		vmid         int
		want         string
	}{
		{"wrong token", "not-the-secret", 106, "401"},
		{"missing vmid", "", 999, "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSleeper(t, stackOptions{pve: pve, pveSecret: tc.secret})
			name := uniqueName(t, "lxc")
			host := name + ".localhost"
			s.stub(name, "pve1", tc.vmid, "hosts", host, "port", app.port)
			s.watcher(name)
			start := time.Now()
			resp, body := s.get(host, "/")
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
			}
			// Clients get the short reason; PVE's, which names the node
			// and vmid, is for the operator.
			mustContain(t, body, "the app failed to start")
			mustNotContain(t, body, tc.want, "pve1", strconv.Itoa(tc.vmid))
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("failure took %s", el)
			}
			// sleeper keeps serving: the admin-visible error names the reason.
			var errText string
			for _, info := range s.reg.List() {
				if info.Name == name {
					errText = info.Error
				}
			}
			mustContain(t, errText, tc.want)
		})
	}
}
