package docker

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

// TestEventsJudgedHere: labels and actions are judged on sleeper's side,
// with the shapes Podman sends: died (before 4.4), remove, health_status
// on every check, and a cleanup it adds; exec_* and unlabelled ones never.
func TestEventsJudgedHere(t *testing.T) {
	t.Parallel()
	d := &Docker{prefix: "sleeper"}
	ev := func(action string, attrs map[string]string) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: events.Action(action),
			Actor: events.Actor{ID: "abc", Attributes: attrs}}
	}
	on := map[string]string{"name": "web", "sleeper.enable": "true"}
	tests := []struct {
		m    events.Message
		want bool
	}{
		{ev("died", on), true},                   // Podman < 4.4
		{ev("remove", on), true},                 // Podman's destroy
		{ev("health_status", on), true},          // Podman: no result in the action
		{ev("health_status: healthy", on), true}, // Docker
		{ev("die", on), true},
		{ev("cleanup", on), false},
		{ev("exec_start: /app -healthcheck", on), false},
		{ev("start", map[string]string{"name": "other"}), false},                       // Podman < 5.7 ignores the label filter
		{ev("start", map[string]string{"name": "x", "sleeper.enable": "false"}), true}, // the labels package judges the value
	}
	for _, tt := range tests {
		if got := d.wanted(tt.m); got != tt.want {
			t.Errorf("%s %v: wanted = %v, want %v", tt.m.Action, tt.m.Actor.Attributes, got, tt.want)
		}
	}
}

// TestRenameWithoutOldName: Podman's rename carries only the new name; the
// ID is queued too, so an inspect by ID follows the container.
func TestRenameWithoutOldName(t *testing.T) {
	t.Parallel()
	m := events.Message{Action: events.ActionRename, Actor: events.Actor{ID: "abc123", Attributes: map[string]string{"name": "new"}}}
	if got := eventNames(m); !reflect.DeepEqual(got, []string{"new", "abc123"}) {
		t.Fatalf("eventNames = %v", got)
	}
}

// TestPingError: a ping without a version header is an error, not the
// newest version; a pinned version the engine refuses says what to do.
func TestPingError(t *testing.T) {
	t.Parallel()
	if err := pingError(client.PingResult{}, nil, ""); !errors.Is(err, ErrNoAPIVersion) {
		t.Fatalf("ping without version: %v, want ErrNoAPIVersion", err)
	}
	if err := pingError(client.PingResult{APIVersion: "1.41"}, nil, ""); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("Error response from daemon: client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version")
	err := pingError(client.PingResult{}, refused, "1.41")
	if !errors.Is(err, refused) || !errors.Is(err, ErrAPIVersionRefused) || !strings.Contains(err.Error(), "DOCKER_API_VERSION=1.41") {
		t.Fatalf("pinned too old: %v", err)
	}
}

// TestInContainerPodman: Podman marks its containers with
// /run/.containerenv, not /.dockerenv.
func TestInContainerPodman(t *testing.T) {
	t.Parallel()
	only := func(path string) func(string) (os.FileInfo, error) {
		return func(p string) (os.FileInfo, error) {
			if p == path {
				return nil, nil
			}
			return nil, fs.ErrNotExist
		}
	}
	if !inContainer(only("/run/.containerenv")) || !inContainer(only("/.dockerenv")) || inContainer(only("/x")) {
		t.Fatal("inContainer does not know both markers")
	}
}

// TestIPv6OnlyNetwork: on a network without IPv4 (API 1.48
// EnableIPv4=false) the container's global IPv6 address is its address.
func TestIPv6OnlyNetwork(t *testing.T) {
	t.Parallel()
	v6 := netip.MustParseAddr("fd00::2")
	if got := endpointIP(&network.EndpointSettings{GlobalIPv6Address: v6}); got != v6 {
		t.Fatalf("IPv6-only: %v, want %v", got, v6)
	}
	v4 := netip.MustParseAddr("172.18.0.2")
	if got := endpointIP(&network.EndpointSettings{IPAddress: v4, GlobalIPv6Address: v6}); got != v4 {
		t.Fatalf("dual stack: %v, want %v", got, v4)
	}
}

// podmanVersion is Podman's /version as 4.3.1 serves it here, with the API
// version Podman 5.8 reports (1.44) although its stop ignores signal.
const podmanVersion = `{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[
 {"Name":"Podman Engine","Version":"5.8.0","Details":{"APIVersion":"5.8.0","MinAPIVersion":"4.0.0","Os":"linux"}},
 {"Name":"Conmon","Version":"conmon version 2.1.6","Details":{"Package":"conmon"}}],
 "Version":"5.8.0","ApiVersion":"1.44","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`

// TestStopSignalByEngine: a custom stop signal goes through stop's signal
// parameter on Docker from API 1.42, and through kill (then wait, then
// SIGKILL) on Podman whatever API version it reports.
func TestStopSignalByEngine(t *testing.T) {
	t.Parallel()
	var podman system.VersionResponse
	if err := json.Unmarshal([]byte(podmanVersion), &podman); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		version *system.VersionResponse
		want    string
	}{
		{"docker 1.44", nil, "POST /containers/abc/stop?signal=SIGINT"},
		{"podman 1.44", &podman, "POST /containers/abc/kill?signal=SIGINT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, d := newFakeEngineAt(t, "1.44", c.version)
			if err := d.Stop(t.Context(), "abc", watcher.StopOptions{Signal: "SIGINT", Timeout: time.Minute}); err != nil {
				t.Fatal(err)
			}
			if calls := f.called(); !containsPrefix(calls, c.want) {
				t.Fatalf("calls %v, want %q", calls, c.want)
			}
			if d.podman(t.Context()) != (c.version != nil) {
				t.Fatal("engine kind misread")
			}
		})
	}
}

// TestPodmanInspectRacingRemoval: Podman answers an inspect that races the
// container's removal with a 500 saying "no such container"; that is a
// container gone (the registry drops it), not an engine failure. Any other
// 500 stays an error.
func TestPodmanInspectRacingRemoval(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body     string
		notFound bool
	}{
		{`{"cause":"no such container","message":"container 0123abc does not exist in database: no such container","response":500}`, true},
		{`{"message":"engine says no"}`, false},
	} {
		f, d := newFakeEngine(t)
		f.mu.Lock()
		f.failBody, f.failWith = c.body, http.StatusInternalServerError
		f.mu.Unlock()
		_, err := d.Inspect(t.Context(), "web")
		if err == nil || errors.Is(err, watcher.ErrNotFound) != c.notFound {
			t.Errorf("%s: got %v, want not-found %v", c.body, err, c.notFound)
		}
	}
}
