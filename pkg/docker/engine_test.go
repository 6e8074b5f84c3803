package docker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"

	"sleeper/pkg/watcher"
)

// fakeEngine is an httptest stand-in for the Docker engine API (1.41, the
// engine on this machine): the adapter is tested through the real moby
// client and real JSON, with no adapter change and no Docker engine.
type fakeEngine struct {
	t        *testing.T
	mu       sync.Mutex
	inspect  map[string]container.InspectResponse // by ID and by name
	list     []container.Summary
	calls    []string // "METHOD /path?query" without the version prefix
	failWith int      // when not 0, every container call answers this status
	failBody string   // with failWith: the body ("" means a generic message)
	events   []events.Message
	// apiVersion is what the ping and /version report; version is
	// /version's body (nil: Docker's shape with an "Engine" component).
	apiVersion string
	version    *system.VersionResponse
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func newFakeEngine(t *testing.T) (*fakeEngine, *Docker) {
	t.Helper()
	return newFakeEngineAt(t, "1.41", nil)
}

// newFakeEngineAt is newFakeEngine reporting API version api and, when not
// nil, the given /version body.
func newFakeEngineAt(t *testing.T, api string, version *system.VersionResponse) (*fakeEngine, *Docker) {
	t.Helper()
	f := &fakeEngine{t: t, inspect: map[string]container.InspectResponse{}, apiVersion: api, version: version}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	d, err := New("tcp://"+srv.Listener.Addr().String(), "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f, d
}

func (f *fakeEngine) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeEngine) serve(rw http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	rw.Header().Set("Api-Version", f.apiVersion)
	switch path {
	case "/_ping":
		_, _ = rw.Write([]byte("OK"))
		return
	case "/version":
		v := f.version
		if v == nil {
			v = &system.VersionResponse{APIVersion: f.apiVersion, Version: "29.1.0",
				Components: []system.ComponentVersion{{Name: "Engine", Version: "29.1.0"}}}
		}
		_ = json.NewEncoder(rw).Encode(v)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+path+"?"+r.URL.RawQuery)
	fail, body := f.failWith, f.failBody
	f.mu.Unlock()
	if fail != 0 && body == "" {
		body = `{"message":"engine says no"}`
	}
	if fail != 0 {
		rw.Header().Set("Content-Type", "application/json") // as engines answer errors
		rw.WriteHeader(fail)
		_, _ = rw.Write([]byte(body))
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case path == "/events":
		f.serveEvents(rw, r)
	case path == "/containers/json":
		f.mu.Lock()
		_ = json.NewEncoder(rw).Encode(f.list)
		f.mu.Unlock()
	case len(parts) == 3 && parts[0] == "containers" && parts[2] == "json":
		f.mu.Lock()
		c, ok := f.inspect[parts[1]]
		f.mu.Unlock()
		if !ok {
			http.Error(rw, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(rw).Encode(c)
	case len(parts) == 3 && parts[2] == "wait":
		_, _ = rw.Write([]byte(`{"StatusCode":0}`))
	case len(parts) == 3 && parts[2] == "kill" && r.URL.Query().Get("signal") == "SIGCONT":
		http.Error(rw, `{"message":"is not running"}`, http.StatusConflict)
	default: // start, stop, kill, pause, unpause
		rw.WriteHeader(http.StatusNoContent)
	}
}

// serveEvents streams the queued events and then hangs up: the stream breaks.
func (f *fakeEngine) serveEvents(rw http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	evs := f.events
	f.mu.Unlock()
	rw.WriteHeader(http.StatusOK)
	for _, e := range evs {
		_ = json.NewEncoder(rw).Encode(e)
	}
	rw.(http.Flusher).Flush()
}

func inspectResponse() container.InspectResponse {
	return container.InspectResponse{
		ID: "abc123", Name: "/web", Created: "2026-11-29T10:00:00.123456789Z",
		State: &container.State{
			Status: container.StateRunning, Running: true, Pid: 4242, StartedAt: "2026-11-29T10:00:01Z",
			FinishedAt: "0001-01-01T00:00:00Z", ExitCode: 0,
			Health: &container.Health{Status: container.Healthy},
		},
		Config: &container.Config{
			Labels:       map[string]string{"sleeper.enable": "true"},
			StopSignal:   "SIGINT",
			Env:          []string{"A=1"},
			ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}, network.MustParsePort("53/udp"): {}, network.MustParsePort("80/tcp"): {}},
			Healthcheck:  &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second},
		},
		NetworkSettings: &container.NetworkSettings{
			Ports: network.PortMap{
				network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "49153"}},
				network.MustParsePort("81/tcp"): nil,
			},
			Networks: map[string]*network.EndpointSettings{
				"front": {IPAddress: netip.MustParseAddr("172.18.0.2")},
				"back":  {IPAddress: netip.MustParseAddr("172.19.0.2")},
				"none":  nil,
			},
		},
	}
}

// TestInspectConverts: an inspect is turned into the watcher's view: name
// without its slash, TCP exposed ports sorted, the health check and its
// status, published ports made dialable, networks sorted by name.
func TestInspectConverts(t *testing.T) {
	t.Parallel()
	f, d := newFakeEngine(t)
	f.inspect["abc123"] = inspectResponse()
	got, err := d.Inspect(t.Context(), "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if got.InspectedAt.IsZero() {
		t.Error("InspectedAt not set")
	}
	got.InspectedAt = time.Time{}
	want := watcher.Container{
		ID: "abc123", Name: "web", Labels: map[string]string{"sleeper.enable": "true"},
		Created: time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC),
		Status:  watcher.StatusRunning, Health: watcher.HealthHealthy,
		StartedAt:  time.Date(2026, 11, 29, 10, 0, 1, 0, time.UTC),
		FinishedAt: time.Time{}, StopSignal: "SIGINT", Pid: 4242,
		Exposed:   []uint16{80, 8080},
		Published: map[string]string{"80/tcp": "127.0.0.1:49153"},
		Networks: []watcher.Network{
			{Name: "back", IP: netip.MustParseAddr("172.19.0.2")},
			{Name: "front", IP: netip.MustParseAddr("172.18.0.2")},
		},
		Check: &watcher.HealthCheck{Test: []string{"CMD", "true"}, Interval: time.Second, Env: []string{"A=1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("convert:\n got %+v\nwant %+v", got, want)
	}
	if _, err := d.Inspect(t.Context(), "gone"); !errors.Is(err, watcher.ErrNotFound) {
		t.Errorf("inspect of a missing container: %v, want ErrNotFound", err)
	}
	f.failWith = http.StatusInternalServerError
	if _, err := d.Inspect(t.Context(), "abc123"); err == nil || errors.Is(err, watcher.ErrNotFound) {
		t.Errorf("inspect on a failing engine: %v, want an error other than ErrNotFound", err)
	}
}

// TestConvertWithoutHealthCheck: "NONE" is no check, and a bare response
// (no state, config or network settings) is a stopped container.
func TestConvertWithoutHealthCheck(t *testing.T) {
	t.Parallel()
	r := inspectResponse()
	r.Config.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	if c := convert(r); c.Check != nil || c.Health != watcher.HealthNone {
		t.Errorf("NONE health check: check %v health %q", c.Check, c.Health)
	}
	if c := convert(container.InspectResponse{ID: "x", Name: "/x"}); c.Status != watcher.StatusStopped || c.Name != "x" {
		t.Errorf("bare response: %+v", c)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    container.State
		want watcher.Status
	}{
		{container.State{Paused: true, Running: true}, watcher.StatusPaused},
		{container.State{Restarting: true, Running: true}, watcher.StatusRestarting},
		{container.State{Running: true}, watcher.StatusRunning},
		{container.State{Status: container.StateRemoving}, watcher.StatusRemoving},
		{container.State{Status: container.StateExited}, watcher.StatusStopped},
		{container.State{Status: container.StateDead}, watcher.StatusStopped},
	}
	for _, tt := range tests {
		if got := status(&tt.s); got != tt.want {
			t.Errorf("status(%+v) = %s, want %s", tt.s, got, tt.want)
		}
	}
}

func TestDialable(t *testing.T) {
	t.Parallel()
	b := func(ip, port string) network.PortBinding {
		var a netip.Addr
		if ip != "" {
			a = netip.MustParseAddr(ip)
		}
		return network.PortBinding{HostIP: a, HostPort: port}
	}
	tests := []struct {
		name string
		in   []network.PortBinding
		want string
	}{
		{"none", nil, ""},
		{"no host port", []network.PortBinding{b("0.0.0.0", "")}, ""},
		{"every IPv4 address is dialled on loopback", []network.PortBinding{b("0.0.0.0", "80")}, "127.0.0.1:80"},
		{"no address", []network.PortBinding{b("", "80")}, "127.0.0.1:80"},
		{"every IPv6 address", []network.PortBinding{b("::", "80")}, "[::1]:80"},
		{"IPv4 preferred", []network.PortBinding{b("::1", "81"), b("127.0.0.2", "82")}, "127.0.0.2:82"},
		{"first IPv6 kept", []network.PortBinding{b("::1", "81"), b("fe80::1", "82")}, "[::1]:81"},
	}
	for _, tt := range tests {
		if got := dialable(tt.in); got != tt.want {
			t.Errorf("%s: dialable = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    string
		want bool
	}{
		{"1.41", false}, {"1.42", true}, {"1.50", true}, {"2.0", true}, {"0.99", false},
		{"", false}, {"1", false}, {"1.x", false}, {"x.42", false},
	}
	for _, tt := range tests {
		if got := versionAtLeast(tt.v, 1, 42); got != tt.want {
			t.Errorf("versionAtLeast(%q, 1, 42) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// TestEventNames: an event names its container; a rename also the old
// name, whose watcher must go.
func TestEventNames(t *testing.T) {
	t.Parallel()
	ev := func(action events.Action, attrs map[string]string) events.Message {
		return events.Message{Action: action, Actor: events.Actor{Attributes: attrs}}
	}
	tests := []struct {
		name string
		m    events.Message
		want []string
	}{
		{"start", ev(events.ActionStart, map[string]string{"name": "web"}), []string{"web"}},
		{"rename", ev(events.ActionRename, map[string]string{"name": "new", "oldName": "/old"}), []string{"new", "old"}},
		{"rename without old name", ev(events.ActionRename, map[string]string{"name": "new"}), []string{"new"}},
		{"no name", ev(events.ActionDie, nil), nil},
		{"old name ignored off a rename", ev(events.ActionDie, map[string]string{"name": "a", "oldName": "b"}), []string{"a"}},
	}
	for _, tt := range tests {
		if got := eventNames(tt.m); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: eventNames = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestEventsStream: names arrive from the engine's stream, which is
// filtered on the server by type only (labels and actions are judged
// here, for Podman); a broken stream yields its error.
func TestEventsStream(t *testing.T) {
	t.Parallel()
	f, d := newFakeEngine(t)
	f.events = []events.Message{
		{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{Attributes: map[string]string{"name": "web", "sleeper.enable": "true"}}},
		{Type: events.ContainerEventType, Action: events.ActionRename, Actor: events.Actor{Attributes: map[string]string{"name": "b", "oldName": "/a", "sleeper.enable": "true"}}},
	}
	names, errs := d.Events(t.Context())
	// The stream breaks after the last event: its error comes once every
	// name is in the buffered channel.
	select {
	case err := <-errs:
		if err == nil {
			t.Error("a broken stream ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a broken stream was not reported")
	}
	var got []string
	for len(names) > 0 {
		got = append(got, <-names)
	}
	if want := []string{"web", "b", "a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	q := f.called()[0]
	for _, want := range []string{"container", "since="} {
		if !strings.Contains(q, want) && !strings.Contains(unescape(q), want) {
			t.Errorf("events query %q lacks %q", q, want)
		}
	}
}

func unescape(s string) string {
	r := strings.NewReplacer("%22", `"`, "%3A", ":", "%2C", ",", "%7B", "{", "%7D", "}", "%5B", "[", "%5D", "]")
	return r.Replace(s)
}

// TestEventsEndWithContext: a subscription whose context ends reports it.
func TestEventsEndWithContext(t *testing.T) {
	t.Parallel()
	f, d := newFakeEngine(t)
	f.events = nil
	ctx, cancel := context.WithCancel(t.Context())
	_, errs := d.Events(ctx)
	cancel()
	select {
	case <-errs:
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled subscription did not end")
	}
}

// TestRuntimeCalls: each Runtime method is one engine call; on API 1.41 a
// stop with a custom signal is a kill, a wait and nothing more when the
// container exits; a kill of a container that is not running is no error.
func TestRuntimeCalls(t *testing.T) {
	t.Parallel()
	f, d := newFakeEngine(t)
	if d.APIVersion() != "1.41" {
		t.Fatalf("negotiated %q, want the fake engine's 1.41", d.APIVersion())
	}
	ctx := t.Context()
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return d.Start(ctx, "abc") }, "POST /containers/abc/start"},
		{func() error { return d.Stop(ctx, "abc", watcher.StopOptions{Timeout: 2 * time.Second}) }, "POST /containers/abc/stop?t=2"},
		{func() error { return d.Pause(ctx, "abc") }, "POST /containers/abc/pause"},
		{func() error { return d.Unpause(ctx, "abc") }, "POST /containers/abc/unpause"},
		{func() error { return d.Kill(ctx, "abc", "SIGTERM") }, "POST /containers/abc/kill?signal=SIGTERM"},
		{func() error { return d.Kill(ctx, "abc", "SIGCONT") }, "POST /containers/abc/kill?signal=SIGCONT"},
		{func() error { return d.Stop(ctx, "abc", watcher.StopOptions{Signal: "SIGINT", Timeout: time.Minute}) }, "POST /containers/abc/kill?signal=SIGINT"},
		{func() error { return d.Stop(ctx, "abc", watcher.StopOptions{Signal: "SIGCONT", Timeout: time.Minute}) }, "POST /containers/abc/kill?signal=SIGCONT"},
	}
	for _, s := range steps {
		before := len(f.called())
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.want, err)
		}
		if !containsPrefix(f.called()[before:], s.want) {
			t.Errorf("calls %v, want %q", f.called()[before:], s.want)
		}
	}
	f.mu.Lock()
	f.failWith = http.StatusInternalServerError
	f.mu.Unlock()
	if err := d.Stop(ctx, "abc", watcher.StopOptions{Signal: "SIGINT"}); err == nil {
		t.Error("a refused signal was not an error")
	}
	if err := d.Kill(ctx, "abc", "SIGKILL"); err == nil {
		t.Error("a refused kill was not an error")
	}
}

func containsPrefix(calls []string, prefix string) bool {
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// TestListAndFind: the list is one call filtered on the enable label; a
// name is found only by an exact match (not a substring, not an alias); a
// service by its compose labels.
func TestListAndFind(t *testing.T) {
	t.Parallel()
	f, d := newFakeEngine(t)
	f.list = []container.Summary{
		{ID: "abc123", Names: []string{"/other/web", "/web"}, State: container.StateRunning},
		{ID: "noname"},
	}
	f.inspect["abc123"] = inspectResponse()
	ctx := t.Context()
	got, err := d.List(ctx)
	if err != nil || len(got) != 1 || got[0].Name != "web" || !got[0].Listed {
		t.Fatalf("List = %+v, %v; want web alone, listed", got, err)
	}
	if c, err := d.FindName(ctx, "web"); err != nil || c.ID != "abc123" {
		t.Errorf("FindName(web) = %s, %v", c.ID, err)
	}
	if _, err := d.FindName(ctx, "we"); !errors.Is(err, watcher.ErrNotFound) {
		t.Errorf("FindName of a substring: %v, want ErrNotFound", err)
	}
	if c, err := d.FindService(ctx, "proj", "web"); err != nil || c.ID != "abc123" {
		t.Errorf("FindService = %s, %v", c.ID, err)
	}
	f.mu.Lock()
	f.list = nil
	f.mu.Unlock()
	if _, err := d.FindService(ctx, "proj", "web"); !errors.Is(err, watcher.ErrNotFound) {
		t.Errorf("FindService with no match: %v, want ErrNotFound", err)
	}
	if nets, err := d.SelfNetworks(ctx); err != nil || nets != nil {
		t.Errorf("SelfNetworks on an engine that does not hold sleeper: %v, %v", nets, err)
	}
	f.mu.Lock()
	f.failWith = http.StatusInternalServerError
	f.mu.Unlock()
	for name, call := range map[string]func() error{
		"List":        func() error { _, err := d.List(ctx); return err },
		"FindName":    func() error { _, err := d.FindName(ctx, "web"); return err },
		"FindService": func() error { _, err := d.FindService(ctx, "p", "s"); return err },
	} {
		if err := call(); err == nil || errors.Is(err, watcher.ErrNotFound) {
			t.Errorf("%s on a failing engine: %v", name, err)
		}
	}
}
