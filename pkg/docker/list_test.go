package docker

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"sleeper/pkg/watcher"
)

func TestConvertSummary(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	s := container.Summary{
		ID:      "abc123",
		Names:   []string{"/web/db-alias", "/db"},
		Created: created.Unix(),
		Labels:  map[string]string{"sleeper.enable": "true"},
		State:   container.StateRunning,
		Status:  "Up 5 minutes (healthy)",
		Ports: []container.PortSummary{
			{PrivatePort: 8080, Type: "tcp"},
			{PrivatePort: 9000, PublicPort: 49153, Type: "tcp", IP: netip.MustParseAddr("::")},
			{PrivatePort: 9000, PublicPort: 49153, Type: "tcp", IP: netip.MustParseAddr("0.0.0.0")},
			{PrivatePort: 9001, PublicPort: 49154, Type: "udp", IP: netip.MustParseAddr("0.0.0.0")},
		},
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{
			"zeta":  {IPAddress: netip.MustParseAddr("10.0.1.2")},
			"alpha": {IPAddress: netip.MustParseAddr("10.0.0.2")},
			"nil":   nil,
		}},
	}
	got, ok := convertSummary(s)
	if !ok {
		t.Fatal("convertSummary refused a named container")
	}
	want := watcher.Container{
		ID: "abc123", Name: "db", Labels: s.Labels, Created: time.Unix(created.Unix(), 0), Listed: true,
		Status: watcher.StatusRunning, Health: watcher.HealthHealthy,
		Exposed:   []uint16{8080, 9000},
		Published: map[string]string{"9000/tcp": "127.0.0.1:49153"},
		Networks: []watcher.Network{
			{Name: "alpha", IP: netip.MustParseAddr("10.0.0.2")},
			{Name: "zeta", IP: netip.MustParseAddr("10.0.1.2")},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("convertSummary:\n got %+v\nwant %+v", got, want)
	}
	if _, ok := convertSummary(container.Summary{ID: "x"}); ok {
		t.Fatal("a container without a name was accepted")
	}
}

func TestListStatusAndHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state  container.ContainerState
		status string
		health *container.HealthSummary
		want   watcher.Status
		wantH  watcher.Health
	}{
		{container.StateRunning, "Up 2 seconds (health: starting)", nil, watcher.StatusRunning, watcher.HealthStarting},
		{container.StateRunning, "Up 2 hours (unhealthy)", nil, watcher.StatusRunning, watcher.HealthUnhealthy},
		{container.StateRunning, "Up 2 hours", nil, watcher.StatusRunning, watcher.HealthNone},
		{container.StateRunning, "Up 2 hours", &container.HealthSummary{Status: container.Healthy}, watcher.StatusRunning, watcher.HealthHealthy},
		{container.StateRunning, "Up", &container.HealthSummary{Status: container.NoHealthcheck}, watcher.StatusRunning, watcher.HealthNone},
		{container.StatePaused, "Up 1 minute (Paused)", nil, watcher.StatusPaused, watcher.HealthNone},
		{container.StateRestarting, "Restarting (1) 2 seconds ago", nil, watcher.StatusRestarting, watcher.HealthNone},
		{container.StateRemoving, "Removal In Progress", nil, watcher.StatusRemoving, watcher.HealthNone},
		{container.StateExited, "Exited (3) 1 minute ago", nil, watcher.StatusStopped, watcher.HealthNone},
		{container.StateCreated, "Created", nil, watcher.StatusStopped, watcher.HealthNone},
		{container.StateDead, "Dead", nil, watcher.StatusStopped, watcher.HealthNone},
	}
	for _, tt := range tests {
		t.Run(string(tt.state)+" "+tt.status, func(t *testing.T) {
			t.Parallel()
			s := container.Summary{Names: []string{"/a"}, State: tt.state, Status: tt.status, Health: tt.health}
			c, _ := convertSummary(s)
			if c.Status != tt.want || c.Health != tt.wantH {
				t.Fatalf("status %q health %q, want %q %q", c.Status, c.Health, tt.want, tt.wantH)
			}
		})
	}
}

func TestListPublishedPrefersIPv4(t *testing.T) {
	t.Parallel()
	s := container.Summary{Names: []string{"/a"}, Ports: []container.PortSummary{
		{PrivatePort: 80, PublicPort: 8081, Type: "tcp", IP: netip.MustParseAddr("::1")},
		{PrivatePort: 80, PublicPort: 8080, Type: "tcp", IP: netip.MustParseAddr("127.0.0.2")},
		{PrivatePort: 80, PublicPort: 8082, Type: "tcp", IP: netip.MustParseAddr("::")},
	}}
	c, _ := convertSummary(s)
	if got := c.Published["80/tcp"]; got != "127.0.0.2:8080" {
		t.Fatalf("published %q, want the IPv4 binding 127.0.0.2:8080", got)
	}
}
