package watcher

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotFound is returned by a Runtime or Source when the container does not exist.
var ErrNotFound = errors.New("container not found")

// Status is the coarse lifecycle state of a container as the engine reports it.
type Status string

// Container statuses. Created, exited and dead containers all count as Stopped.
const (
	StatusRunning    Status = "running"
	StatusPaused     Status = "paused"
	StatusStopped    Status = "stopped"
	StatusRestarting Status = "restarting"
	StatusRemoving   Status = "removing"
)

// Health is the Docker health-check status of a container.
type Health string

// Health statuses; HealthNone means the container has no health check.
const (
	HealthNone      Health = ""
	HealthStarting  Health = "starting"
	HealthHealthy   Health = "healthy"
	HealthUnhealthy Health = "unhealthy"
)

// Network is one network a container is attached to, with its address there.
type Network struct {
	Name string
	IP   netip.Addr
}

// Container is the observed state of one container, as inspected. It is a
// value: the runtime builds a fresh one on every inspect.
type Container struct {
	// InspectedAt is when the inspect that produced this value began; zero
	// when the runtime does not say. The watcher drops an observation that
	// began before its own last start, stop or pause had finished.
	InspectedAt time.Time
	// Listed says the value comes from the engine's list, not an inspect:
	// Check, StopSignal, StartedAt, FinishedAt, ExitCode, Error and Pid
	// are unknown (zero), not absent.
	Listed bool
	// Engine names the engine the container came from, among several;
	// "" for the registry's default one. The reconciler of each engine
	// stamps it; the registry keys the container by Key(Engine, Name).
	Engine string
	ID     string
	Name   string // without the leading slash
	Labels map[string]string
	// Project and Service place the container in a group of services (a
	// compose project and service) as its provider reads them: depends_on
	// names and readiness host names resolve through them. Empty when none.
	Project    string
	Service    string
	Created    time.Time
	Status     Status
	Health     Health
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int
	Error      string // the engine's error text for the last start, if any
	StopSignal string // the image's or container's configured stop signal
	// Pid is the container's main process as its runtime's host numbers
	// it; 0 when stopped or unknown. Where sleeper sees that host's
	// processes (it runs there, or in a container sharing its process
	// table) it reads the container's listening sockets through it; the
	// process's cgroup must name ID, so a pid from another host or another
	// process table is never trusted.
	Pid     int
	Exposed []uint16
	// Published maps "8080/tcp" to the host address it is published on,
	// already rewritten to a dialable address ("127.0.0.1:49153").
	Published map[string]string
	Networks  []Network // sorted by name
	// Check is the container's configured health check; nil when it has
	// none (or "NONE"). Health says how the engine judges it.
	Check *HealthCheck
}

// HealthCheck is a container's configured health check, as the engine runs it.
type HealthCheck struct {
	// Test is the engine's form: ["CMD", prog, args...] or ["CMD-SHELL", line].
	Test []string
	// Interval between the engine's probes; the first comes one interval
	// after the start. Zero means the engine's default, 30 s.
	Interval time.Duration
	// Env is the container's environment (KEY=value), which a CMD-SHELL
	// test's $VAR expands from. Kept only for containers with a check.
	Env []string
}

// Execer runs a command inside a running container and returns its exit
// code. The Docker runtime implements it; sleeper uses it to run a health
// test itself when the container opts in (sleeper.health_exec=true).
type Execer interface {
	Exec(ctx context.Context, id string, cmd []string) (int, error)
}

// Awake reports whether the container is running and not paused.
func (c Container) Awake() bool { return c.Status == StatusRunning }

// StopOptions says how to stop a container.
type StopOptions struct {
	Signal  string        // "" means the container's own stop signal
	Timeout time.Duration // grace before SIGKILL
}

// Runtime powers one kind of workload on and off. The watcher declares what it
// needs; the Docker and Proxmox adapters implement it.
type Runtime interface {
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, opt StopOptions) error
	Kill(ctx context.Context, id string, signal string) error
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	Inspect(ctx context.Context, ref string) (Container, error)
}

// Source discovers containers: a full list, and a stream of names whose
// state may have changed. The reconciler decides from Inspect, never from the
// event itself, so a Source may coalesce, repeat or reorder names freely.
type Source interface {
	// List returns every container carrying the enable label, in one call.
	// Its values may lack what only an inspect gives (StartedAt, FinishedAt,
	// ExitCode, Error, StopSignal; Health of a stopped container): the
	// watcher inspects when a wake, a sleep or an error needs those.
	List(ctx context.Context) ([]Container, error)
	// Inspect returns the current state of one container by name or ID.
	Inspect(ctx context.Context, ref string) (Container, error)
	// Events streams names of containers that changed until ctx ends or the
	// stream breaks; the error channel then yields why.
	Events(ctx context.Context) (<-chan string, <-chan error)
}
