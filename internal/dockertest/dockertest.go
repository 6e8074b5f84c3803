// Package dockertest runs sleeper's tests against a real Docker engine.
//
// Policy:
//   - No engine is a failure, not a skip: CI must never go green without having run
//     the Docker tests. Client calls t.Fatal when the engine does not answer.
//   - Images are built here from internal/testapp (FROM scratch + a static binary),
//     because the test engine has no registry. Tags are content-addressed, so an
//     image left by an earlier run is reused and never stale; images are never removed.
//   - Every container belongs to the test that ran it: Run registers a forced removal
//     with t.Cleanup, and labels it LabelKey=1 so RemoveLeftovers can reap containers
//     of runs that were killed before their cleanups ran.
//   - Ports are published on 127.0.0.1 with an ephemeral host port only, read back
//     with HostPort. Tests never dial container IPs: they are unreachable from the host
//     on some machines, and a fixed host port would collide between parallel runs.
//   - Helpers that wait poll with a deadline; none sleeps blindly.
package dockertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// pingTimeout bounds the first contact with the engine; a healthy local engine
// answers in milliseconds, so a longer wait only hides a hung daemon.
const pingTimeout = 10 * time.Second

// Client connects to the engine named by the environment (DOCKER_HOST, else the local
// socket), checks that it answers, and closes the client when the test ends. It fails
// the test if the engine does not answer: skipping would let CI pass without testing.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := connect(t.Context())
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// connect is Client without a test, for the image cache that outlives any one test.
func connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client from environment: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	// Negotiation is the client's default; asking for it here makes it happen now, so
	// a too-old engine is reported by this ping instead of by some later call.
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker engine at %s does not answer: %w "+
			"(these tests need a running engine: start dockerd or set DOCKER_HOST)", cli.DaemonHost(), err)
	}
	return cli, nil
}
