// Package docker adapts the Docker engine API to sleeper's watcher: it is the
// Runtime that starts and stops containers and the Source that lists them and
// streams their events.
//
// Policy: one event subscription per call to Events, filtered on the server
// to container events of labelled containers and to the actions that change
// state, drained at once into a buffered channel (the daemon drops events for
// a listener that is slow for 100 ms). Reconnecting is the caller's job.
package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

var (
	_ watcher.Runtime = (*Docker)(nil)
	_ watcher.Source  = (*Docker)(nil)
	_ watcher.Finder  = (*Docker)(nil)
	_ watcher.Execer  = (*Docker)(nil)
)

// watchedActions are the container events that can change what sleeper
// decides. exec_* events (one per health probe) and the like are left out.
// Podman before 4.4 says died for die and remove for destroy.
var watchedActions = []string{
	"create", "start", "die", "died", "stop", "pause", "unpause",
	"health_status", "destroy", "remove", "rename",
}

// The labels compose puts on every container it creates: they give
// watcher.Container its Project and Service.
const (
	composeProject = "com.docker.compose.project"
	composeService = "com.docker.compose.service"
)

// Provider is the name the API shows for a container this package drives.
const Provider = "docker"

// Docker is what the watcher needs of an engine: its runtime, its event
// source, the finder of unmanaged dependencies and health-check exec.
var (
	_ watcher.Runtime = (*Docker)(nil)
	_ watcher.Source  = (*Docker)(nil)
	_ watcher.Finder  = (*Docker)(nil)
	_ watcher.Execer  = (*Docker)(nil)
)

// Docker talks to one Docker engine.
type Docker struct {
	cli    *client.Client
	prefix string
	// hostAddr is where a remote engine's published ports are dialled;
	// invalid for an engine on sleeper's own host.
	hostAddr netip.Addr
	// kind caches whether the engine is Podman (see podman).
	kind atomic.Int32
}

// Options builds a Docker.
type Options struct {
	// Host is the engine's address; "" means DOCKER_HOST, else the local
	// socket.
	Host string
	// Prefix is the label prefix.
	Prefix string
	// HostAddress is set for an engine on another host: its published
	// ports are dialled there, and its containers' network addresses are
	// never offered (a remote bridge address is not reachable).
	HostAddress netip.Addr
}

// New returns a client for the engine at host ("" means DOCKER_HOST, else
// the local socket). It does not dial: an engine that is down now is retried
// by the reconciler, never fatal. prefix is the label prefix.
func New(host, prefix string) (*Docker, error) {
	return NewWith(Options{Host: host, Prefix: prefix})
}

// NewWith is New with every option.
func NewWith(o Options) (*Docker, error) {
	opts := []client.Opt{client.FromEnv}
	if o.Host != "" {
		opts = append(opts, client.WithHost(o.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &Docker{cli: cli, prefix: o.Prefix, hostAddr: o.HostAddress}, nil
}

// remote rewrites a container of a remote engine to what sleeper can dial:
// published ports on the engine's host address, and no network addresses.
func (d *Docker) remote(c watcher.Container) watcher.Container {
	if !d.hostAddr.IsValid() {
		return c
	}
	c.Networks = nil
	for k, hp := range c.Published {
		if _, port, err := net.SplitHostPort(hp); err == nil {
			c.Published[k] = net.JoinHostPort(d.hostAddr.String(), port)
		}
	}
	return c
}

// ErrNoAPIVersion: the engine answered the ping without an API version
// header. It is not a Docker engine (or a proxy dropped the header), and
// guessing the newest version would send calls it may not know.
var ErrNoAPIVersion = errors.New("the engine's ping carries no API version")

// ErrAPIVersionRefused: the engine refuses the API version
// DOCKER_API_VERSION pins. Retrying cannot help: sleeper stops at start.
var ErrAPIVersionRefused = errors.New("the engine refuses the pinned API version")

// Ping checks that the engine answers and negotiates the API version.
func (d *Docker) Ping(ctx context.Context) error {
	res, err := d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return pingError(res, err, os.Getenv("DOCKER_API_VERSION"))
}

// pingError judges a ping: a refused pinned version (Docker 29.0–29.2
// refuse API versions below 1.44) gets a message saying what to change.
func pingError(res client.PingResult, err error, pinned string) error {
	switch {
	case err != nil && pinned != "" && strings.Contains(err.Error(), "too old"):
		return fmt.Errorf("docker ping: %w: DOCKER_API_VERSION=%s "+
			"(Docker 29.0–29.2 need 1.44 or newer): unset it or raise it: %w", ErrAPIVersionRefused, pinned, err)
	case err != nil:
		return fmt.Errorf("docker ping: %w", err)
	case res.APIVersion == "":
		return fmt.Errorf("docker ping: %w", ErrNoAPIVersion)
	}
	return nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.cli.Close() }

// APIVersion returns the negotiated API version.
func (d *Docker) APIVersion() string { return d.cli.ClientVersion() }

// enableFilter selects containers that carry the enable label at all; the
// labels package decides what its value means (true, 1, True…), so the
// engine's exact-match filter cannot be the judge.
func (d *Docker) enableFilter() client.Filters {
	return client.Filters{}.Add("label", d.prefix+".enable")
}

// FindService implements watcher.Finder: the container of a compose
// project's service, labelled or not (dependencies need not be managed).
func (d *Docker) FindService(ctx context.Context, project, service string) (watcher.Container, error) {
	f := client.Filters{}.
		Add("label", composeProject+"="+project).
		Add("label", composeService+"="+service)
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return watcher.Container{}, fmt.Errorf("find service %s/%s: %w", project, service, err)
	}
	if len(res.Items) == 0 {
		return watcher.Container{}, fmt.Errorf("find service %s/%s: %w", project, service, watcher.ErrNotFound)
	}
	return d.Inspect(ctx, res.Items[0].ID)
}

// FindName implements watcher.Finder: the container named exactly name.
// The engine's inspect would also accept an ID or a unique ID prefix, and
// its name filter matches substrings, so this lists by name and compares.
func (d *Docker) FindName(ctx context.Context, name string) (watcher.Container, error) {
	f := client.Filters{}.Add("name", name)
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return watcher.Container{}, fmt.Errorf("find container %s: %w", name, err)
	}
	for _, c := range res.Items {
		// Names holds "/name", plus "/other/alias" for legacy links.
		if slices.Contains(c.Names, "/"+name) {
			return d.Inspect(ctx, c.ID)
		}
	}
	return watcher.Container{}, fmt.Errorf("find container %s: %w", name, watcher.ErrNotFound)
}

// Events implements watcher.Source.
func (d *Docker) Events(ctx context.Context) (<-chan string, <-chan error) {
	// Only the type is filtered on the server: Podman before 5.7 ignores a
	// key-only label filter and Podman before 4.4 names its actions its own
	// way (died, remove), so labels and actions are judged here.
	f := client.Filters{}.Add("type", "container")
	// The engine answers before it registers the listener; replaying from a
	// second ago closes that gap (duplicates are harmless to a reconciler, and
	// the periodic relist covers clock skew with a remote engine).
	since := time.Now().Add(-time.Second)
	res := d.cli.Events(ctx, client.EventsListOptions{
		Filters: f,
		Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
	})
	// Buffered and drained by a goroutine that does nothing else, so the
	// daemon never sees a slow reader; it ends with the subscription.
	names := make(chan string, 1024)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case m := <-res.Messages:
				if !d.wanted(m) {
					continue
				}
				for _, n := range eventNames(m) {
					select {
					case names <- n:
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
				}
			case err := <-res.Err:
				errs <- err
				return
			}
		}
	}()
	return names, errs
}

// wanted reports whether an event concerns a labelled container and an
// action that can change what sleeper decides. health_status carries its
// result after a colon on Docker ("health_status: healthy").
func (d *Docker) wanted(m events.Message) bool {
	if _, ok := m.Actor.Attributes[d.prefix+".enable"]; !ok {
		return false
	}
	action, _, _ := strings.Cut(string(m.Action), ":")
	return slices.Contains(watchedActions, action)
}

// eventNames returns the container names an event concerns: the current
// name, and on a rename also the old one (whose watcher must go). Podman
// sends a rename without the old name: the ID is queued as well, and the
// reconciler's inspect by ID finds the container's new name; the old
// name is then dropped by the next relist.
func eventNames(m events.Message) []string {
	var out []string
	if n := strings.TrimPrefix(m.Actor.Attributes["name"], "/"); n != "" {
		out = append(out, n)
	}
	if m.Action == events.ActionRename {
		if n := strings.TrimPrefix(m.Actor.Attributes["oldName"], "/"); n != "" {
			out = append(out, n)
		} else if m.Actor.ID != "" {
			out = append(out, m.Actor.ID)
		}
	}
	return out
}

// Inspect implements watcher.Runtime and watcher.Source.
func (d *Docker) Inspect(ctx context.Context, ref string) (watcher.Container, error) {
	began := time.Now()
	res, err := d.cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) || podmanGone(err) {
			return watcher.Container{}, fmt.Errorf("inspect %s: %w", ref, watcher.ErrNotFound)
		}
		return watcher.Container{}, fmt.Errorf("inspect %s: %w", ref, err)
	}
	c := d.remote(convert(res.Container))
	c.InspectedAt = began
	return c, nil
}

// Start implements watcher.Runtime.
func (d *Docker) Start(ctx context.Context, id string) error {
	_, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return err
}

// Stop implements watcher.Runtime. The stop signal parameter exists from API
// 1.42, and Podman ignores it whatever version it reports; there, a custom
// signal is sent with kill and the grace period enforced here, ending with
// SIGKILL.
func (d *Docker) Stop(ctx context.Context, id string, opt watcher.StopOptions) error {
	secs := int(opt.Timeout.Round(time.Second) / time.Second)
	if opt.Signal == "" || versionAtLeast(d.APIVersion(), 1, 42) && !d.podman(ctx) {
		_, err := d.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: opt.Signal, Timeout: &secs})
		return err
	}
	wait := d.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	if _, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: opt.Signal}); err != nil {
		if cerrdefs.IsConflict(err) {
			return nil // not running: already stopped
		}
		return fmt.Errorf("signal %s: %w", opt.Signal, err)
	}
	t := time.NewTimer(opt.Timeout)
	defer t.Stop()
	select {
	case <-wait.Result:
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("wait for exit: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	_, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "SIGKILL"})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("SIGKILL after %s: %w", opt.Timeout, err)
	}
	return nil
}

// Kill implements watcher.Runtime.
func (d *Docker) Kill(ctx context.Context, id string, signal string) error {
	_, err := d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
	if cerrdefs.IsConflict(err) {
		return nil // not running
	}
	return err
}

// Pause implements watcher.Runtime.
func (d *Docker) Pause(ctx context.Context, id string) error {
	_, err := d.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	return err
}

// Unpause implements watcher.Runtime.
func (d *Docker) Unpause(ctx context.Context, id string) error {
	_, err := d.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	return err
}

// SelfNetworks returns the networks of the container sleeper runs in, or nil
// when it runs on the host. Docker sets a container's hostname to its short
// ID and creates /.dockerenv, which is how sleeper finds itself. An error
// means sleeper is in a container but could not inspect it (the engine is
// not answering yet): the caller retries rather than assume the host.
func (d *Docker) SelfNetworks(ctx context.Context) ([]string, error) {
	if !inContainer(os.Stat) {
		return nil, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("find own container: %w", err)
	}
	res, err := d.cli.ContainerInspect(ctx, host, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil, nil // a container, but not on this engine
	case err != nil:
		return nil, fmt.Errorf("inspect own container %s: %w", host, err)
	case res.Container.NetworkSettings == nil:
		return nil, nil
	}
	var nets []string
	for n := range res.Container.NetworkSettings.Networks {
		nets = append(nets, n)
	}
	slices.Sort(nets)
	return nets, nil
}

// inContainer reports whether sleeper runs in a container: Docker marks
// one with /.dockerenv, Podman with /run/.containerenv.
func inContainer(stat func(string) (os.FileInfo, error)) bool {
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := stat(f); err == nil {
			return true
		}
	}
	return false
}

func convert(r container.InspectResponse) watcher.Container {
	c := watcher.Container{
		ID:        r.ID,
		Name:      strings.TrimPrefix(r.Name, "/"),
		Status:    watcher.StatusStopped,
		Published: map[string]string{},
	}
	if t, err := time.Parse(time.RFC3339Nano, r.Created); err == nil {
		c.Created = t
	}
	if cfg := r.Config; cfg != nil {
		c.Labels = cfg.Labels
		c.Project, c.Service = cfg.Labels[composeProject], cfg.Labels[composeService]
		c.StopSignal = cfg.StopSignal
		for p := range cfg.ExposedPorts {
			if p.Proto() == "tcp" {
				c.Exposed = append(c.Exposed, p.Num())
			}
		}
		slices.Sort(c.Exposed)
		if hc := cfg.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
			c.Health = watcher.HealthStarting
			c.Check = &watcher.HealthCheck{Test: hc.Test, Interval: hc.Interval, Env: cfg.Env}
		}
	}
	if s := r.State; s != nil {
		c.Status = status(s)
		c.ExitCode, c.Error = s.ExitCode, s.Error
		c.Pid = s.Pid
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, s.StartedAt)
		c.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
		if c.Health != watcher.HealthNone && s.Health != nil && s.Health.Status != "" {
			c.Health = watcher.Health(s.Health.Status)
		}
	}
	if ns := r.NetworkSettings; ns != nil {
		for port, bindings := range ns.Ports {
			if addr := dialable(bindings); addr != "" {
				c.Published[port.String()] = addr
			}
		}
		for name, ep := range ns.Networks {
			if ep != nil {
				c.Networks = append(c.Networks, watcher.Network{Name: name, IP: endpointIP(ep)})
			}
		}
		slices.SortFunc(c.Networks, func(a, b watcher.Network) int { return strings.Compare(a.Name, b.Name) })
	}
	return c
}

// endpointIP is a container's address on a network: its IPv4 address,
// else, on an IPv6-only network (API 1.48, EnableIPv4=false), its global
// IPv6 address.
func endpointIP(ep *network.EndpointSettings) netip.Addr {
	if ep.IPAddress.IsValid() && !ep.IPAddress.IsUnspecified() {
		return ep.IPAddress
	}
	return ep.GlobalIPv6Address
}

func status(s *container.State) watcher.Status {
	switch {
	case s.Paused:
		return watcher.StatusPaused
	case s.Restarting:
		return watcher.StatusRestarting
	case s.Running:
		return watcher.StatusRunning
	case s.Status == container.StateRemoving:
		return watcher.StatusRemoving
	default:
		return watcher.StatusStopped
	}
}

// dialable picks the host address of a published port, preferring IPv4; a
// binding on every address is dialled on loopback.
func dialable(bindings []network.PortBinding) string {
	best := ""
	for _, b := range bindings {
		if b.HostPort == "" {
			continue
		}
		ip := b.HostIP
		switch {
		case !ip.IsValid() || (ip.Is4() && ip.IsUnspecified()):
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		case ip.IsUnspecified():
			ip = netip.IPv6Loopback()
		}
		addr := net.JoinHostPort(ip.String(), b.HostPort)
		if ip.Is4() {
			return addr
		}
		if best == "" {
			best = addr
		}
	}
	return best
}

// versionAtLeast compares an API version such as "1.41".
func versionAtLeast(v string, major, minor int) bool {
	maj, min, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err := errors.Join(err1, err2); err != nil {
		return false
	}
	return a > major || (a == major && b >= minor)
}
