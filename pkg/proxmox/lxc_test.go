package proxmox

import (
	"sleeper/internal/await"
	"sleeper/internal/syncbuf"

	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/watcher"
)

func newRuntime(t *testing.T, f *pvefake.Server, addrWait time.Duration) (*Runtime, *syncbuf.Buffer) {
	t.Helper()
	log, buf := testLogger(t)
	return NewRuntime(RuntimeConfig{Client: newClient(t, f, nil), Log: log, AddressWait: addrWait}), buf
}

func TestGuestStartInspectResolve(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	rt, _ := newRuntime(t, f, 0)
	g := rt.For("pve1", 101)
	ctx := testContext(t)

	c, err := g.Inspect(ctx, "stub-docker-id")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != watcher.StatusStopped || c.ID != "lxc/pve1/101" || c.Name != "jellyfin" || len(c.Networks) != 0 {
		t.Fatalf("stopped guest inspects as %+v", c)
	}
	if err := g.Start(ctx, "stub-docker-id"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	c, err = g.Inspect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Awake() || c.StartedAt.IsZero() {
		t.Fatalf("started guest inspects as %+v", c)
	}
	want := []watcher.Network{{Name: NetworkName, IP: guestAddr}}
	if len(c.Networks) != 1 || c.Networks[0] != want[0] {
		t.Fatalf("networks %v, want %v", c.Networks, want)
	}
	// What the watcher does after a wake: the upstream is the guest's
	// address and the port label.
	u, err := watcher.ResolveUpstream(c, &labels.Spec{Port: 8096, Scheme: "http"}, nil)
	if err != nil || u.String() != "http://127.0.0.2:8096" {
		t.Fatalf("ResolveUpstream = %v, %v", u, err)
	}
}

// TestGuestStartRunsTheApp is the e2e test's setup in small: the fake's
// hook brings an app up on the guest's address when the guest runs.
func TestGuestStartRunsTheApp(t *testing.T) {
	t.Parallel()
	var srv *http.Server // set and used under the fake's per-guest lock
	appDone := make(chan error, 1)
	ports := make(chan string, 1)
	f := newFake(t, pvefake.Config{
		OnStart: func(g pvefake.Guest) error {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(g.Addr, 0).String())
			if err != nil {
				return err
			}
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			ports <- port
			srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "hello from the lxc")
			})}
			go func() { appDone <- srv.Serve(ln) }()
			return nil
		},
		OnStop: func(pvefake.Guest) {
			_ = srv.Close()
			<-appDone
		},
	})
	rt, _ := newRuntime(t, f, 0)
	g := rt.For("pve1", 101)
	ctx := testContext(t)
	if err := g.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	c, err := g.Inspect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := watcher.ResolveAddr(c, 0, "tcp", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(addr)
	port := <-ports
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "hello from the lxc" {
		t.Errorf("app answered %q", body)
	}
	if err := g.Kill(ctx, "", "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get("http://" + net.JoinHostPort(host, port)); err == nil {
		t.Error("the app still answers after the guest stopped")
	}
}

func TestGuestPowerOperations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		running   bool
		hang      bool
		op        func(ctx context.Context, g watcher.Runtime) error
		wantStops int    // forced stops sent
		wantState string // the fake's state afterwards
		wantShut  int    // shutdowns sent
	}{
		{name: "stop shuts down cleanly", running: true,
			op: func(ctx context.Context, g watcher.Runtime) error {
				return g.Stop(ctx, "", watcher.StopOptions{Timeout: 1500 * time.Millisecond})
			},
			wantState: "stopped", wantShut: 1},
		{name: "a guest ignoring the shutdown is stopped in the same task (forceStop)", running: true, hang: true,
			op: func(ctx context.Context, g watcher.Runtime) error {
				return g.Stop(ctx, "", watcher.StopOptions{Timeout: time.Second})
			},
			wantState: "stopped", wantShut: 1},
		{name: "stop of a stopped guest succeeds",
			op:        func(ctx context.Context, g watcher.Runtime) error { return g.Stop(ctx, "", watcher.StopOptions{}) },
			wantState: "stopped", wantShut: 1},
		{name: "kill stops", running: true,
			op:        func(ctx context.Context, g watcher.Runtime) error { return g.Kill(ctx, "", "SIGKILL") },
			wantState: "stopped", wantStops: 1},
		{name: "kill of a stopped guest succeeds",
			op:        func(ctx context.Context, g watcher.Runtime) error { return g.Kill(ctx, "", "SIGKILL") },
			wantState: "stopped", wantStops: 1},
		{name: "start of a running guest succeeds", running: true,
			op:        func(ctx context.Context, g watcher.Runtime) error { return g.Start(ctx, "") },
			wantState: "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, pvefake.Config{})
			if tt.running {
				if err := f.SetRunning("pve1", 101, true); err != nil {
					t.Fatal(err)
				}
			}
			f.HangShutdown("pve1", 101, tt.hang)
			rt, log := newRuntime(t, f, 0)
			if err := tt.op(testContext(t), rt.For("pve1", 101)); err != nil {
				t.Fatalf("op: %v", err)
			}
			if got := f.Status("pve1", 101); got != tt.wantState {
				t.Errorf("state %s, want %s", got, tt.wantState)
			}
			if got := f.Calls(pvefake.EndpointShutdown); got != tt.wantShut {
				t.Errorf("%d shutdowns, want %d", got, tt.wantShut)
			}
			if got := f.Calls(pvefake.EndpointStop); got != tt.wantStops {
				t.Errorf("%d stops, want %d", got, tt.wantStops)
			}
			if tt.wantShut > 0 && tt.running {
				form := f.LastForm(pvefake.EndpointShutdown)
				if form.Get("forceStop") != "1" || form.Get("timeout") == "" {
					t.Errorf("shutdown form %v", form)
				}
			}
			_ = log
		})
	}
}

func TestGuestShutdownTimeoutIsStopTimeout(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	if err := f.SetRunning("pve1", 101, true); err != nil {
		t.Fatal(err)
	}
	rt, _ := newRuntime(t, f, 0)
	if err := rt.For("pve1", 101).Stop(testContext(t), "", watcher.StopOptions{Timeout: 25 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got := f.LastForm(pvefake.EndpointShutdown).Get("timeout"); got != "25" {
		t.Errorf("shutdown timeout=%s, want 25", got)
	}
}

func TestGuestErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddLXC("pve1", 102, "broken", guestAddr)
	f.FailStart("pve1", 102, "startup for container '102' failed")
	rt, _ := newRuntime(t, f, 0)
	ctx := testContext(t)
	tests := []struct {
		name  string
		call  func() error
		is    []error
		text  string
		state string
	}{
		{name: "pause", call: func() error { return rt.For("pve1", 101).Pause(ctx, "") },
			is: []error{ErrPauseUnsupported}, text: "lxc 101 on pve1: pause is not supported for Proxmox LXC"},
		{name: "unpause", call: func() error { return rt.For("pve1", 101).Unpause(ctx, "") },
			is: []error{ErrPauseUnsupported}},
		{name: "unknown vmid", call: func() error { _, err := rt.For("pve1", 555).Inspect(ctx, ""); return err },
			is: []error{ErrNotFound, watcher.ErrNotFound}, text: "lxc 555 on pve1: "},
		{name: "failed start task", call: func() error { return rt.For("pve1", 102).Start(ctx, "") },
			text: "startup for container '102' failed"},
		{name: "bad guest id", call: func() error { return rt.Start(ctx, "0123abcd") },
			text: "not a proxmox guest id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("err %v does not match %v", err, s)
				}
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err %q, want it to contain %q", err, tt.text)
			}
		})
	}
}

func TestRuntimeByGuestID(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	rt, _ := newRuntime(t, f, 0)
	ctx := testContext(t)
	id := GuestID("pve1", 101)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	c, err := rt.Inspect(ctx, id)
	if err != nil || !c.Awake() || c.ID != id {
		t.Fatalf("Inspect = %+v, %v", c, err)
	}
	if err := rt.Stop(ctx, id, watcher.StopOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Kill(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	if err := rt.Pause(ctx, id); !errors.Is(err, ErrPauseUnsupported) {
		t.Fatalf("Pause = %v", err)
	}
}

func TestParseGuestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		node string
		vmid int
		ok   bool
	}{
		{"lxc/pve1/101", "pve1", 101, true},
		{"lxc/pve-a.lan/100000", "pve-a.lan", 100000, true},
		{"lxc/pve1/0", "", 0, false},
		{"lxc//101", "", 0, false},
		{"lxc/pve1", "", 0, false},
		{"vm/pve1/101", "", 0, false},
		{"0123abcd", "", 0, false},
	}
	for _, tt := range tests {
		node, vmid, err := ParseGuestID(tt.id)
		if (err == nil) != tt.ok || node != tt.node || vmid != tt.vmid {
			t.Errorf("ParseGuestID(%q) = %q, %d, %v", tt.id, node, vmid, err)
		}
		if tt.ok && GuestID(node, vmid) != tt.id {
			t.Errorf("GuestID does not round-trip %q", tt.id)
		}
	}
}

// TestStartedAtStable: the watcher tells stale observations by StartedAt,
// so every inspect of one run must give the same one though PVE only
// reports a whole-second uptime; a stopped guest keeps it, and a new run
// gets a later one.
func TestStartedAtStable(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	rt, _ := newRuntime(t, f, 0)
	g := rt.For("pve1", 101)
	ctx := testContext(t)
	if err := g.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	first, err := g.Inspect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// Inspect until the uptime has ticked over at least once.
	var later watcher.Container
	await.Eventually(t, 5*time.Second, "uptime reaches 2s", func() bool {
		later, err = g.Inspect(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if !later.StartedAt.Equal(first.StartedAt) {
			t.Fatalf("StartedAt moved from %v to %v within one run", first.StartedAt, later.StartedAt)
		}
		st, _ := rt.client.Status(ctx, "pve1", 101)
		return st.Uptime >= 2*time.Second
	})
	if err := g.Stop(ctx, "", watcher.StopOptions{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	stopped, err := g.Inspect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !stopped.StartedAt.Equal(first.StartedAt) || !stopped.FinishedAt.After(first.StartedAt) {
		t.Errorf("stopped: StartedAt %v FinishedAt %v; want the run's start and a later finish", stopped.StartedAt, stopped.FinishedAt)
	}
	if err := g.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	again, err := g.Inspect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !again.StartedAt.After(first.StartedAt) {
		t.Errorf("new run StartedAt %v, want after %v", again.StartedAt, first.StartedAt)
	}
}

func TestStartWaitsForAnAddress(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	f.AddLXC("pve1", 103, "dhcp-never", netip.Addr{})
	rt, log := newRuntime(t, f, 200*time.Millisecond)
	g := rt.For("pve1", 103)
	ctx := testContext(t)
	start := time.Now()
	if err := g.Start(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Start returned after %s, before the address wait", d)
	}
	if !strings.Contains(log.String(), "shows no address") {
		t.Errorf("no warning; log:\n%s", log)
	}
	c, err := g.Inspect(ctx, "")
	if err != nil || !c.Awake() || len(c.Networks) != 0 {
		t.Fatalf("Inspect = %+v, %v", c, err)
	}
	if _, err := watcher.ResolveUpstream(c, &labels.Spec{Port: 80, Scheme: "http"}, nil); err == nil {
		t.Error("ResolveUpstream found an address the guest does not have")
	}
}

func TestPickAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ifs  []Interface
		want string
	}{
		{"none", nil, ""},
		{"only lo", []Interface{{Name: "lo", Inet: "127.0.0.1/8", Inet6: "::1/128"}}, ""},
		{"ipv4 after lo", []Interface{{Name: "lo", Inet: "127.0.0.1/8"}, {Name: "eth0", Inet: "192.0.2.10/24"}}, "192.0.2.10"},
		{"ipv4 beats an earlier ipv6", []Interface{{Name: "eth0", Inet6: "2001:db8::1/64"}, {Name: "eth1", Inet: "192.0.2.11/24"}}, "192.0.2.11"},
		{"global ipv6 when no ipv4", []Interface{{Name: "eth0", Inet6: "fe80::1/64"}, {Name: "eth1", Inet6: "2001:db8::2/64"}}, "2001:db8::2"},
		{"link-local only", []Interface{{Name: "eth0", Inet6: "fe80::1/64"}}, ""},
		{"bare address", []Interface{{Name: "eth0", Inet: "192.0.2.12"}}, "192.0.2.12"},
	}
	for _, tt := range tests {
		a, ok := pickAddr(tt.ifs)
		if got := map[bool]string{true: a.String(), false: ""}[ok]; got != tt.want {
			t.Errorf("%s: pickAddr = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestObserveRuns checks the StartedAt/FinishedAt bookkeeping against the
// watcher's rule for stale observations: an observation with an earlier
// StartedAt, or the same one with an earlier FinishedAt, is dropped.
func TestObserveRuns(t *testing.T) {
	t.Parallel()
	rt := NewRuntime(RuntimeConfig{})
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	k := guestKey{"pve1", 101}
	steps := []struct {
		name         string
		running      bool
		uptime       time.Duration
		now          time.Time
		wantStarted  time.Time
		wantFinished time.Time
	}{
		{"first look, stopped", false, 0, at(0), time.Time{}, time.Time{}},
		{"started", true, 0, at(10), at(10), time.Time{}},
		{"same run, uptime ticked", true, time.Second, at(11.9), at(10), time.Time{}},
		{"same run, jitter", true, 2 * time.Second, at(11.95), at(10), time.Time{}},
		{"stopped", false, 0, at(20), at(10), at(20)},
		{"stale running answer", true, 5 * time.Second, at(20.1), at(10), time.Time{}},
		{"stopped still", false, 0, at(20.5), at(10), at(20)},
		{"started again soon", true, 0, at(21), at(21), at(20)},
		{"restarted unseen", true, time.Second, at(40), at(39), at(20)},
	}
	for _, s := range steps {
		started, finished := rt.observe(k, s.running, s.uptime, s.now)
		if !started.Equal(s.wantStarted) || !finished.Equal(s.wantFinished) {
			t.Errorf("%s: got %v / %v, want %v / %v", s.name, started, finished, s.wantStarted, s.wantFinished)
		}
	}
}
