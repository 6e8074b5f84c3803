package docker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

// List implements watcher.Source with one call: the engine's list, filtered
// by the enable label, already carries what routing and the state machine
// need (name, labels, state, health, ports, networks). A thousand containers
// are discovered in one round trip instead of a thousand inspects; what the
// list lacks (start and finish times, exit code, stop signal) is read by an
// inspect when a wake, a sleep or an error needs it.
func (d *Docker) List(ctx context.Context) ([]watcher.Container, error) {
	began := time.Now()
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: d.enableFilter()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]watcher.Container, 0, len(res.Items))
	for _, s := range res.Items {
		if c, ok := convertSummary(s); ok {
			c = d.remote(c)
			c.InspectedAt = began
			out = append(out, c)
		}
	}
	return out, nil
}

// convertSummary turns one list entry into the watcher's view. ok is false
// for an entry without a name (the engine always gives one; a proxy in
// between might not).
func convertSummary(s container.Summary) (watcher.Container, bool) {
	if len(s.Names) == 0 {
		return watcher.Container{}, false
	}
	c := watcher.Container{
		ID:      s.ID,
		Name:    firstName(s.Names),
		Labels:  s.Labels,
		Project: s.Labels[composeProject],
		Service: s.Labels[composeService],
		// Whole seconds, as inspect's time is rounded too (see convert): the
		// same container must look the same from both calls.
		Created:   time.Unix(s.Created, 0),
		Status:    listStatus(s.State),
		Health:    listHealth(s),
		Published: map[string]string{},
		Listed:    true,
	}
	for _, p := range s.Ports {
		if p.Type != "tcp" {
			continue
		}
		if !slices.Contains(c.Exposed, p.PrivatePort) {
			c.Exposed = append(c.Exposed, p.PrivatePort)
		}
		key := strconv.Itoa(int(p.PrivatePort)) + "/tcp"
		if addr := listDialable(p); addr != "" && preferAddr(c.Published[key], addr) {
			c.Published[key] = addr
		}
	}
	slices.Sort(c.Exposed)
	if ns := s.NetworkSettings; ns != nil {
		for name, ep := range ns.Networks {
			if ep != nil {
				c.Networks = append(c.Networks, watcher.Network{Name: name, IP: endpointIP(ep)})
			}
		}
		slices.SortFunc(c.Networks, func(a, b watcher.Network) int { return strings.Compare(a.Name, b.Name) })
	}
	return c, true
}

// firstName picks the container's own name: the list also gives link
// aliases ("/other/alias"), which hold a slash after the first character.
func firstName(names []string) string {
	for _, n := range names {
		if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
			return n
		}
	}
	return strings.TrimPrefix(names[0], "/")
}

func listStatus(s container.ContainerState) watcher.Status {
	switch s {
	case container.StateRunning:
		return watcher.StatusRunning
	case container.StatePaused:
		return watcher.StatusPaused
	case container.StateRestarting:
		return watcher.StatusRestarting
	case container.StateRemoving:
		return watcher.StatusRemoving
	default:
		return watcher.StatusStopped
	}
}

// listHealth reads the health of a running container. Engines from API 1.52
// give it as a field; older ones only in the status text ("Up 5 minutes
// (healthy)", "Up 2 seconds (health: starting)"). A stopped container's
// health is unknown from the list, and only matters once it runs again, when
// the wake inspects it.
func listHealth(s container.Summary) watcher.Health {
	if h := s.Health; h != nil {
		switch h.Status {
		case container.Starting, container.Healthy, container.Unhealthy:
			return watcher.Health(h.Status)
		}
		return watcher.HealthNone
	}
	switch {
	case strings.HasSuffix(s.Status, "(health: starting)"):
		return watcher.HealthStarting
	case strings.HasSuffix(s.Status, "(healthy)"):
		return watcher.HealthHealthy
	case strings.HasSuffix(s.Status, "(unhealthy)"):
		return watcher.HealthUnhealthy
	}
	return watcher.HealthNone
}

// listDialable is dialable for one list entry: a port bound on every
// address is dialled on loopback.
func listDialable(p container.PortSummary) string {
	if p.PublicPort == 0 {
		return ""
	}
	ip := p.IP
	switch {
	case !ip.IsValid() || (ip.Is4() && ip.IsUnspecified()):
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(p.PublicPort)))
}

// preferAddr reports whether addr should replace cur: the list gives one
// entry per binding, and like dialable the first IPv4 binding wins.
func preferAddr(cur, addr string) bool {
	if cur == "" {
		return true
	}
	return !isIPv4HostPort(cur) && isIPv4HostPort(addr)
}

func isIPv4HostPort(hp string) bool {
	host, _, err := net.SplitHostPort(hp)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is4()
}
