package docker

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
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
