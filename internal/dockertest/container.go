package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// LabelKey marks every container Run creates, so RemoveLeftovers (or a human with
// `docker ps -af label=sleepertest=1`) can find them. It is deliberately outside the
// sleeper.* namespace: sleeper rejects unknown sleeper.* labels.
const LabelKey = "sleepertest"

// NamePrefix starts the generated name of every container whose Spec has no Name.
const NamePrefix = "sleepertest-"

const (
	// pollInterval is how often the wait helpers inspect: fast enough that waits add
	// little to wake-latency measurements, slow enough not to load the engine.
	pollInterval = 20 * time.Millisecond
	// hostPortTimeout covers a container that is still being started by someone else.
	hostPortTimeout = 10 * time.Second
	// cleanupTimeout bounds a forced removal; a stuck one should not hang the run.
	cleanupTimeout = 30 * time.Second
	// leftoverAge keeps RemoveLeftovers away from containers of test runs in progress.
	leftoverAge = 10 * time.Minute
)

// loopback is the only host address ports are published on: tests must not expose
// anything beyond this machine, nor dial the bridge network.
var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// Spec describes a container for Run.
type Spec struct {
	// Name is the container name; empty means a unique NamePrefix+<random hex> name.
	Name string
	// Image is usually Image(t) or HealthImage(t).
	Image string
	// Labels are added to the container; LabelKey=1 is always added as well.
	Labels map[string]string
	// Env holds KEY=value pairs; see internal/testapp for the knobs it reads.
	Env []string
	// Publish lists container ports such as "8080/tcp" or "9001/udp" (no protocol
	// means tcp). Each is published on 127.0.0.1 with an ephemeral host port; read it
	// with HostPort once the container runs. Docker picks a new host port on every
	// start, so read it again after a restart.
	Publish []string
	// Network, if set, is a network to attach the container to instead of the default
	// bridge.
	Network string
	// Start starts the container after creating it.
	Start bool
	// Cmd is passed to the image's entrypoint: arguments to /app for the testapp images.
	Cmd []string
	// Healthcheck, if set, replaces the image's health check (as docker run
	// --health-* does). Scratch images have no shell: use a "CMD" test.
	Healthcheck *container.HealthConfig
	// Ulimits, if set, are the container's rlimits: Podman here needs
	// PodmanUlimits.
	Ulimits []*container.Ulimit
}

// Run creates the container described by s, starts it if s.Start, and returns its ID.
// The container is force-removed when the test ends, even if the test failed or its
// context is already done.
func Run(t testing.TB, cli *client.Client, s Spec) string {
	t.Helper()
	name := s.Name
	if name == "" {
		name = NamePrefix + randomHex(t, 6)
	}
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = make(map[string]string, 1)
	}
	labels[LabelKey] = "1"

	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, p := range s.Publish {
		port, err := network.ParsePort(p)
		if err != nil {
			t.Fatalf("dockertest: Spec.Publish %q: %v", p, err)
		}
		exposed[port] = struct{}{}
		// An empty HostPort asks the engine for an ephemeral one.
		bindings[port] = []network.PortBinding{{HostIP: loopback}}
	}

	opts := client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        s.Image,
			Env:          s.Env,
			Cmd:          s.Cmd,
			Labels:       labels,
			ExposedPorts: exposed,
			Healthcheck:  s.Healthcheck,
		},
		HostConfig: &container.HostConfig{PortBindings: bindings,
			Resources: container.Resources{Ulimits: s.Ulimits}},
	}
	if s.Network != "" {
		opts.HostConfig.NetworkMode = container.NetworkMode(s.Network)
		opts.NetworkingConfig = &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{s.Network: {}},
		}
	}

	ctx := t.Context()
	created, err := cli.ContainerCreate(ctx, opts)
	if err != nil {
		t.Fatalf("dockertest: create container %s from %s: %v", name, s.Image, err)
	}
	id := created.ID
	// Registered before the start, so a container that fails to start is removed too.
	t.Cleanup(func() { remove(t, cli, id) })

	if s.Start {
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("dockertest: start container %s: %v", name, err)
		}
	}
	return id
}

// remove force-removes a container with a fresh context: cleanups run after the
// test's own context is cancelled.
func remove(t testing.TB, cli *client.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) { // a test may remove its container itself
		t.Errorf("dockertest: remove container %.12s: %v", id, err)
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("dockertest: random name: %v", err)
	}
	return hex.EncodeToString(b)
}

// HostPort returns "127.0.0.1:<port>" for containerPort (like "8080/tcp") of a running
// container, waiting for the engine to report the binding: it appears only once the
// container runs, and changes on every start.
func HostPort(t testing.TB, cli *client.Client, id, containerPort string) string {
	t.Helper()
	port, err := network.ParsePort(containerPort)
	if err != nil {
		t.Fatalf("dockertest: HostPort %q: %v", containerPort, err)
	}
	deadline := time.Now().Add(hostPortTimeout)
	var state string
	for {
		res, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("dockertest: inspect container %.12s: %v", id, err)
		}
		c := res.Container
		if c.State != nil {
			state = string(c.State.Status)
		}
		if c.State != nil && c.State.Running && c.NetworkSettings != nil {
			for _, b := range c.NetworkSettings.Ports[port] {
				if addr, ok := dialable(b); ok {
					return addr
				}
				if b.HostPort != "" {
					t.Fatalf("dockertest: container %.12s publishes %s on %s, not on loopback",
						id, containerPort, net.JoinHostPort(b.HostIP.String(), b.HostPort))
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockertest: container %.12s has no host port for %s after %v (state %q)",
				id, containerPort, hostPortTimeout, state)
		}
		time.Sleep(pollInterval)
	}
}

// dialable turns a binding into a loopback address. A wildcard binding (published
// by something other than Run) is reachable through 127.0.0.1 as well.
func dialable(b network.PortBinding) (string, bool) {
	if _, err := strconv.ParseUint(b.HostPort, 10, 16); err != nil {
		return "", false
	}
	host := b.HostIP
	switch {
	case !host.IsValid() || host.IsUnspecified():
		host = loopback
	case !host.IsLoopback():
		return "", false
	}
	return net.JoinHostPort(host.String(), b.HostPort), true
}

// WaitState polls the container every 20 ms until want accepts its state, and fails
// the test with the last state seen if that does not happen within timeout.
func WaitState(t testing.TB, cli *client.Client, id string, want func(container.State) bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last container.State
	var lastErr error
	for {
		res, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			t.Fatalf("dockertest: container %.12s is gone (last state %s)", id, describe(last))
		case err != nil:
			lastErr = err // maybe transient; the deadline decides
		case res.Container.State != nil:
			last = *res.Container.State
			if want(last) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockertest: container %.12s: wanted state not reached within %v; last state %s (last error %v)",
				id, timeout, describe(last), lastErr)
		}
		time.Sleep(pollInterval)
	}
}

// describe renders the fields of a state that explain a failed wait.
func describe(s container.State) string {
	health := "none"
	if s.Health != nil {
		health = string(s.Health.Status)
	}
	return fmt.Sprintf("{status=%s exit_code=%d health=%s error=%q started=%s finished=%s}",
		s.Status, s.ExitCode, health, s.Error, s.StartedAt, s.FinishedAt)
}

// RemoveLeftovers force-removes containers labelled LabelKey=1 that were created more
// than 10 minutes ago: those of runs killed before their cleanups ran. Younger ones
// may belong to test processes running right now, so they are left alone.
func RemoveLeftovers(t testing.TB, cli *client.Client) {
	t.Helper()
	ctx := t.Context()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelKey+"=1"),
	})
	if err != nil {
		t.Fatalf("dockertest: list leftover containers: %v", err)
	}
	cutoff := time.Now().Add(-leftoverAge).Unix()
	for _, c := range res.Items {
		if c.Created >= cutoff {
			continue
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("dockertest: remove leftover container %.12s %v: %v", c.ID, c.Names, err)
			continue
		}
		t.Logf("dockertest: removed leftover container %.12s %v", c.ID, c.Names)
	}
}
