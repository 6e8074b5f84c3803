package swarm

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"sleeper/pkg/watcher"
)

// fakeEngine is an httptest stand-in for a swarm manager's API (1.41, the
// engine on this machine): services, tasks, networks, updates and events,
// in the engine's JSON, through the real moby client. An update sets the
// tasks at once: the given count of running tasks for the service.
type fakeEngine struct {
	t        *testing.T
	mu       sync.Mutex
	services map[string]*swarm.Service // by ID
	tasks    []swarm.Task
	updates  []string // "ID version=N replicas=M"
	// staleOnce answers the next update with the engine's out-of-sequence error.
	staleOnce bool
	events    []events.Message
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func newFakeEngine(t *testing.T) (*fakeEngine, *Swarm) {
	t.Helper()
	f := &fakeEngine{t: t, services: map[string]*swarm.Service{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	s, err := New(Config{Host: "tcp://" + srv.Listener.Addr().String(), Prefix: "sleeper", Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return f, s
}

func u64(n uint64) *uint64 { return &n }

// addService adds a replicated service with n replicas (and n running tasks).
func (f *fakeEngine) addService(id, name string, n uint64, labels map[string]string) *swarm.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc := &swarm.Service{ID: id, Meta: swarm.Meta{Version: swarm.Version{Index: 10}}}
	svc.Spec.Name = name
	svc.Spec.Labels = labels
	svc.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: u64(n)}
	f.services[id] = svc
	f.setTasksLocked(id, n)
	return svc
}

func (f *fakeEngine) setTasksLocked(id string, n uint64) {
	kept := f.tasks[:0]
	for _, t := range f.tasks {
		if t.ServiceID != id {
			kept = append(kept, t)
		}
	}
	f.tasks = kept
	for i := range n {
		f.tasks = append(f.tasks, swarm.Task{
			ID: id + "-t" + strconv.Itoa(int(i)), ServiceID: id, DesiredState: swarm.TaskStateRunning,
			Status: swarm.TaskStatus{State: swarm.TaskStateRunning, Timestamp: time.Date(2026, 11, 29, 10, 0, int(i), 0, time.UTC)},
		})
	}
}

func (f *fakeEngine) updated() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.updates...)
}

func (f *fakeEngine) serve(rw http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	rw.Header().Set("Api-Version", "1.41")
	rw.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case path == "/_ping":
		_, _ = rw.Write([]byte("OK"))
	case path == "/events":
		rw.WriteHeader(http.StatusOK)
		for _, e := range f.events {
			if strings.Contains(r.URL.Query().Get("filters"), `"`+string(e.Type)+`"`) {
				_ = json.NewEncoder(rw).Encode(e)
			}
		}
	case path == "/services":
		var out []swarm.Service
		for _, s := range f.services {
			out = append(out, *s)
		}
		_ = json.NewEncoder(rw).Encode(out)
	case path == "/tasks":
		_ = json.NewEncoder(rw).Encode(f.tasks)
	case path == "/networks":
		_ = json.NewEncoder(rw).Encode([]network.Summary{
			{Network: network.Network{ID: "net-ingress", Name: "ingress", Ingress: true}},
			{Network: network.Network{ID: "net-app", Name: "stack_default"}},
		})
	case len(parts) == 2 && parts[0] == "services":
		svc := f.lookupLocked(parts[1])
		if svc == nil {
			http.Error(rw, `{"message":"service `+parts[1]+` not found"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(rw).Encode(svc)
	case len(parts) == 3 && parts[2] == "update" && r.Method == http.MethodPost:
		f.update(rw, r, parts[1])
	default:
		http.Error(rw, `{"message":"unexpected `+r.Method+" "+path+`"}`, http.StatusNotImplemented)
	}
}

func (f *fakeEngine) lookupLocked(ref string) *swarm.Service {
	for _, s := range f.services {
		if s.ID == ref || s.Spec.Name == ref {
			return s
		}
	}
	return nil
}

// update checks the version as the engine does and applies the new count.
func (f *fakeEngine) update(rw http.ResponseWriter, r *http.Request, id string) {
	svc := f.services[id]
	var spec swarm.ServiceSpec
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil || svc == nil {
		http.Error(rw, `{"message":"bad update"}`, http.StatusBadRequest)
		return
	}
	version := r.URL.Query().Get("version")
	if f.staleOnce || version != strconv.FormatUint(svc.Version.Index, 10) {
		f.staleOnce = false
		svc.Version.Index++ // someone else's write
		http.Error(rw, `{"message":"rpc error: code = Unknown desc = update out of sequence"}`, http.StatusBadRequest)
		return
	}
	n := *spec.Mode.Replicated.Replicas
	f.updates = append(f.updates, id+" version="+version+" replicas="+strconv.FormatUint(n, 10))
	prev := svc.Spec
	svc.PreviousSpec = &prev
	svc.Spec = spec
	svc.Version.Index++
	f.setTasksLocked(id, n)
	_, _ = rw.Write([]byte(`{}`))
}

func TestStartScalesToRememberedCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		labels map[string]string
		prev   uint64 // PreviousSpec replicas (0: none)
		want   string
	}{
		{"label", map[string]string{"sleeper.enable": "true", "sleeper.replicas": "2"}, 5, "s1 version=10 replicas=2"},
		{"previous spec", map[string]string{"sleeper.enable": "true"}, 3, "s1 version=10 replicas=3"},
		{"default one", map[string]string{"sleeper.enable": "true"}, 0, "s1 version=10 replicas=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, s := newFakeEngine(t)
			svc := f.addService("s1", "web", 0, tc.labels)
			if tc.prev > 0 {
				svc.PreviousSpec = &swarm.ServiceSpec{Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(tc.prev)}}}
			}
			if err := s.Start(t.Context(), "s1"); err != nil {
				t.Fatal(err)
			}
			if got := f.updated(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("updates = %q, want [%q]", got, tc.want)
			}
			c, err := s.Inspect(t.Context(), "s1")
			if err != nil || c.Status != watcher.StatusRunning {
				t.Fatalf("after Start: %v, %v; want running", c.Status, err)
			}
		})
	}
}

// TestSleepThenWakeRestoresCount: a service scaled to 0 by sleeper wakes to
// the count it had, and one already above 0 (scaled by hand) is left alone.
func TestSleepThenWakeRestoresCount(t *testing.T) {
	t.Parallel()
	f, s := newFakeEngine(t)
	f.addService("s1", "web", 4, map[string]string{"sleeper.enable": "true"})
	if err := s.Stop(t.Context(), "s1", watcher.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Inspect(t.Context(), "web")
	if err != nil || c.Status != watcher.StatusStopped {
		t.Fatalf("after Stop: %v, %v; want stopped", c.Status, err)
	}
	f.mu.Lock()
	f.services["s1"].PreviousSpec = nil // only this process remembers
	f.mu.Unlock()
	if err := s.Start(t.Context(), "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context(), "s1"); err != nil { // already up: no update
		t.Fatal(err)
	}
	want := []string{"s1 version=10 replicas=0", "s1 version=11 replicas=4"}
	if got := f.updated(); strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("updates = %q, want %q", got, want)
	}
}

// TestUpdateRetriesOutOfSequence: an update that lost a race is read again
// and sent with the new version.
func TestUpdateRetriesOutOfSequence(t *testing.T) {
	t.Parallel()
	f, s := newFakeEngine(t)
	f.addService("s1", "web", 0, map[string]string{"sleeper.enable": "true"})
	f.mu.Lock()
	f.staleOnce = true
	f.mu.Unlock()
	if err := s.Start(t.Context(), "s1"); err != nil {
		t.Fatal(err)
	}
	if got := f.updated(); len(got) != 1 || got[0] != "s1 version=11 replicas=1" {
		t.Fatalf("updates = %q, want one at version 11", got)
	}
}

func TestPauseIsAnError(t *testing.T) {
	t.Parallel()
	_, s := newFakeEngine(t)
	err := s.Pause(t.Context(), "s1")
	if !errors.Is(err, ErrPauseUnsupported) || !strings.Contains(err.Error(), "sleeper.stop_method=pause") {
		t.Fatalf("Pause = %v, want ErrPauseUnsupported naming the label", err)
	}
}

func TestGlobalServiceCannotScale(t *testing.T) {
	t.Parallel()
	f, s := newFakeEngine(t)
	svc := f.addService("s1", "web", 0, map[string]string{"sleeper.enable": "true"})
	svc.Spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	if err := s.Start(t.Context(), "s1"); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("Start = %v, want ErrNotReplicated", err)
	}
}

func TestInspectNotFound(t *testing.T) {
	t.Parallel()
	_, s := newFakeEngine(t)
	if _, err := s.Inspect(t.Context(), "nope"); !errors.Is(err, watcher.ErrNotFound) {
		t.Fatalf("Inspect = %v, want ErrNotFound", err)
	}
}

// TestConvert: ports from the tasks (host mode) and the endpoint (ingress),
// VIPs named by network without the ingress one, stack project, status.
func TestConvert(t *testing.T) {
	t.Parallel()
	f, s := newFakeEngine(t)
	svc := f.addService("s1", "shop_web", 1, map[string]string{"sleeper.enable": "true", stackNamespace: "shop"})
	svc.Endpoint = swarm.Endpoint{
		Ports: []swarm.PortConfig{
			{Protocol: "tcp", TargetPort: 8080, PublishedPort: 30080, PublishMode: swarm.PortConfigPublishModeIngress},
			{Protocol: "udp", TargetPort: 53, PublishedPort: 30053},
		},
		VirtualIPs: []swarm.EndpointVirtualIP{
			{NetworkID: "net-ingress", Addr: netip.MustParsePrefix("10.0.0.5/24")},
			{NetworkID: "net-app", Addr: netip.MustParsePrefix("10.0.1.7/24")},
		},
	}
	f.tasks[0].Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 9000, PublishedPort: 31000, PublishMode: swarm.PortConfigPublishModeHost}}
	c, err := s.Inspect(t.Context(), "shop_web")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != watcher.StatusRunning || c.Project != "shop" || c.Service != "web" || c.ID != "s1" {
		t.Fatalf("got %+v", c)
	}
	if c.Published["8080/tcp"] != "127.0.0.1:30080" || c.Published["9000/tcp"] != "127.0.0.1:31000" || len(c.Published) != 2 {
		t.Fatalf("Published = %v", c.Published)
	}
	if len(c.Networks) != 1 || c.Networks[0].Name != "stack_default" || c.Networks[0].IP.String() != "10.0.1.7" {
		t.Fatalf("Networks = %v", c.Networks)
	}
	if len(c.Exposed) != 1 || c.Exposed[0] != 8080 {
		t.Fatalf("Exposed = %v", c.Exposed)
	}
	// Wanted but not running yet: restarting, not asleep.
	f.mu.Lock()
	f.tasks[0].Status.State = swarm.TaskStatePreparing
	f.mu.Unlock()
	if c, _ := s.Inspect(t.Context(), "s1"); c.Status != watcher.StatusRestarting {
		t.Fatalf("preparing task: status %v, want restarting", c.Status)
	}
}

func TestListAndEvents(t *testing.T) {
	t.Parallel()
	f, s := newFakeEngine(t)
	f.addService("s1", "web", 1, map[string]string{"sleeper.enable": "true"})
	f.addService("s2", "other", 1, map[string]string{"unrelated": "x"})
	cs, err := s.List(t.Context())
	if err != nil || len(cs) != 1 || cs[0].Name != "web" || cs[0].Status != watcher.StatusRunning {
		t.Fatalf("List = %+v, %v; want web running", cs, err)
	}
	f.mu.Lock()
	f.events = []events.Message{
		{Type: events.ServiceEventType, Action: "update", Actor: events.Actor{ID: "s1", Attributes: map[string]string{"name": "web"}}},
		{Type: events.ContainerEventType, Action: "die", Actor: events.Actor{ID: "c1", Attributes: map[string]string{taskServiceLabel: "api"}}},
	}
	f.mu.Unlock()
	names, errs := s.Events(t.Context())
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case n := <-names:
			got[n] = true
		case err := <-errs:
			if len(got) < 2 {
				// The fake hangs up after its events; both may not be in yet.
				t.Logf("stream ended: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("events: got %v, want web and api", got)
		}
	}
	if !got["web"] || !got["api"] {
		t.Fatalf("events: got %v, want web and api", got)
	}
}

// TestRecheckBetweenStates: a service seen with a task wanted but none
// running is sent again on the events channel, with no engine event: the
// engine marks a task running after its container's start event and sends
// nothing then.
func TestRecheckBetweenStates(t *testing.T) {
	t.Parallel()
	f, s := newFakeEngine(t)
	f.addService("s1", "web", 1, map[string]string{"sleeper.enable": "true"})
	f.mu.Lock()
	f.tasks[0].Status.State = swarm.TaskStateStarting
	f.mu.Unlock()
	names, _ := s.Events(t.Context())
	if c, err := s.Inspect(t.Context(), "s1"); err != nil || c.Status != watcher.StatusRestarting {
		t.Fatalf("Inspect = %v, %v; want restarting", c.Status, err)
	}
	select {
	case n := <-names:
		if n != "web" {
			t.Fatalf("got %q, want web", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a service between states was never looked at again")
	}
}
