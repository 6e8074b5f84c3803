// Package swarm adapts Docker Swarm services to sleeper's watcher: a service
// whose own labels (Spec.Labels; deploy.labels in a stack file) carry the
// enable label is one workload, asleep at 0 replicas and awake at its
// desired count.
//
// Policy:
//   - Waking scales a service at 0 up to sleeper.replicas, else the count it
//     had when last seen awake (remembered here, or the engine's PreviousSpec
//     after a restart of sleeper), else 1, and returns once a task runs: the
//     watcher then probes the upstream as for any container. A service
//     already above 0 (scaled by hand) is left at its count.
//   - Sleeping (stop or kill) scales to 0 and waits until no task runs. There
//     is nothing to pause: Pause is an error naming the label.
//   - Every update sends the version index it read (optimistic concurrency):
//     an update that lost a race with another writer is read and sent again.
//   - Events: one subscription to service events and one to the containers
//     of swarm tasks, each drained at once by its own goroutine into one
//     buffered channel; both end with the caller's context. Reconnecting is
//     the caller's job (watcher.Reconciler).
package swarm

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

// Provider is the name the API shows for a service this package drives.
const Provider = "swarm"

// stackNamespace is the label docker stack deploy puts on every service:
// it gives watcher.Container its Project.
const stackNamespace = "com.docker.stack.namespace"

var (
	_ watcher.Runtime = (*Swarm)(nil)
	_ watcher.Source  = (*Swarm)(nil)
	_ watcher.Finder  = (*Swarm)(nil)
)

// Config builds a Swarm.
type Config struct {
	// Host is the engine's address ("" means DOCKER_HOST, else the local
	// socket). It must be a swarm manager: only managers serve services.
	Host string
	// Prefix is the label prefix ("sleeper").
	Prefix string
	// PublishedHost is where published ports are dialled; 127.0.0.1 when
	// empty (the routing mesh and host-mode ports answer on every address
	// of the node sleeper runs on).
	PublishedHost string
	Log           *slog.Logger
	// Poll is the first interval between task lists while a scale waits;
	// it doubles up to 500 ms. 50 ms when zero.
	Poll time.Duration
}

// Swarm talks to one swarm manager.
type Swarm struct {
	cli *client.Client
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// awake is the replica count each service (by ID) had when last seen
	// above 0: what it wakes to when no label says.
	awake map[string]uint64
	// nets names networks by ID, for the service's virtual IPs; filled on
	// a miss.
	nets map[string]netInfo
	// recheck takes the names of services seen between states (tasks
	// wanted, none running yet): the engine sends no event when a task
	// becomes running (only its container's start, which comes first), so
	// Events looks at them again shortly.
	recheck chan string
}

type netInfo struct {
	name    string
	ingress bool
}

// New returns a client for the manager at cfg.Host. It does not dial.
func New(cfg Config) (*Swarm, error) {
	opts := []client.Opt{client.FromEnv}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("swarm client: %w", err)
	}
	cfg.PublishedHost = cmp.Or(cfg.PublishedHost, "127.0.0.1")
	cfg.Poll = cmp.Or(cfg.Poll, 50*time.Millisecond)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Swarm{cli: cli, cfg: cfg, log: cfg.Log, awake: map[string]uint64{}, nets: map[string]netInfo{},
		recheck: make(chan string, 256)}, nil
}

// Close releases the client's connections.
func (s *Swarm) Close() error { return s.cli.Close() }

// IsManager pings the engine and reports whether it is an active swarm
// manager: sleeper enables Swarm support on its own when it is.
func (s *Swarm) IsManager(ctx context.Context) (bool, error) {
	m, err := s.Membership(ctx)
	return m.Manager, err
}

// Membership is what an engine says of its place in a swarm.
type Membership struct {
	// Manager is true for an active manager (only managers serve the
	// services API).
	Manager bool
	// ClusterID names the swarm; "" outside one. Two engines with the same
	// ID are managers of one swarm and see the same services.
	ClusterID string
}

// Membership pings the engine and reads its swarm membership from its info.
func (s *Swarm) Membership(ctx context.Context) (Membership, error) {
	if _, err := s.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return Membership{}, fmt.Errorf("swarm ping: %w", err)
	}
	res, err := s.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return Membership{}, fmt.Errorf("swarm info: %w", err)
	}
	sw := res.Info.Swarm
	m := Membership{Manager: sw.LocalNodeState == swarm.LocalNodeStateActive && sw.ControlAvailable}
	if sw.Cluster != nil {
		m.ClusterID = sw.Cluster.ID
	}
	return m, nil
}
