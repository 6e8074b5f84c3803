package proxmox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

var (
	_ watcher.Runtime = (*Runtime)(nil)
	_ watcher.Runtime = (*Guest)(nil)
)

// ErrPauseUnsupported is returned by Pause and Unpause of an LXC: PVE's
// suspend for LXC is experimental (CRIU) and reports the guest stopped
// afterwards. VMs pause.
var ErrPauseUnsupported = errors.New("pause is not supported for Proxmox LXC")

// NetworkName is the name of the one network an inspected guest is on, so
// that watcher.ResolveAddr dials its address.
const NetworkName = "lxc"

// Defaults of RuntimeConfig and of a stop without a timeout.
const (
	DefaultAddressWait     = 15 * time.Second
	defaultShutdownTimeout = 10 * time.Second
	// DefaultHAWait is how long a stop of an HA-managed guest may take
	// after its hastop task ended: the HA manager acts on a 10 s loop.
	DefaultHAWait = 25 * time.Second
	// shutdownSlack is how long a shutdown task may outlive its timeout:
	// with forceStop PVE kills the guest at the timeout in the same task.
	shutdownSlack = 15 * time.Second
	// killSlack bounds the wait for a guest to show stopped after a stop
	// or hibernate task.
	killSlack = 30 * time.Second
	// startedAtSlack absorbs the jitter of "now − uptime": PVE's uptime is
	// whole seconds, and calls take time. A new run is further off than this.
	startedAtSlack = 3 * time.Second
)

// RuntimeConfig builds a Runtime.
type RuntimeConfig struct {
	Client *Client // required
	// Poller, when set, polls fast while a guest starts or stops, so that
	// other observers of the guest learn of it soon. Optional.
	Poller *Poller
	Log    *slog.Logger // required
	// AddressWait bounds how long Start waits, once the guest runs, for it
	// to show an address (DHCP takes a moment): the watcher resolves the
	// upstream right after Start. DefaultAddressWait when zero; negative
	// does not wait.
	AddressWait time.Duration
	// HAWait bounds how long a stop of an HA-managed guest waits, after
	// its hastop task, for the HA manager to stop it. DefaultHAWait when
	// zero.
	HAWait time.Duration
	// LabelPrefix is the stub labels' prefix, for config errors that name
	// a label; labels.DefaultPrefix when empty.
	LabelPrefix string
	// Stubs lists the stub containers of a guest (their type, stop method
	// and whether they set an upstream); SetStubs may set it later.
	Stubs StubsFunc
}

// Runtime drives the LXC guests of one PVE cluster. It implements
// watcher.Runtime for IDs made by GuestID, and For binds one guest so that
// the container IDs the watcher passes do not matter.
type Runtime struct {
	client   *Client
	poller   *Poller
	log      *slog.Logger
	addrWait time.Duration

	haWait time.Duration
	prefix string
	stubs  atomic.Pointer[StubsFunc]
	// noInterfaces is set once a node answered 501 for /interfaces
	// (pve-container before 5.0.6): config addresses are read instead.
	noInterfaces atomic.Bool

	mu   sync.Mutex
	runs map[guestKey]*run
}

type guestKey struct {
	node string
	vmid int
}

// run is what the runtime remembers of a guest's latest run, so that every
// inspect of the same run reports the same StartedAt (the watcher compares
// it to tell stale observations from new ones) and a stopped guest keeps
// the StartedAt of the run that ended, like Docker does.
type run struct {
	running  bool
	started  time.Time // estimated start of the latest run
	finished time.Time // when the latest run was first seen stopped; zero while it runs
	before   time.Time // the end of the run before it, reported while it runs
}

// NewRuntime returns a runtime; it owns no goroutine.
func NewRuntime(cfg RuntimeConfig) *Runtime {
	if cfg.AddressWait == 0 {
		cfg.AddressWait = DefaultAddressWait
	}
	if cfg.HAWait <= 0 {
		cfg.HAWait = DefaultHAWait
	}
	if cfg.LabelPrefix == "" {
		cfg.LabelPrefix = labels.DefaultPrefix
	}
	r := &Runtime{
		client:   cfg.Client,
		poller:   cfg.Poller,
		log:      cfg.Log,
		addrWait: cfg.AddressWait,
		haWait:   cfg.HAWait,
		prefix:   cfg.LabelPrefix,
		runs:     map[guestKey]*run{},
	}
	if cfg.Stubs != nil {
		r.SetStubs(cfg.Stubs)
	}
	return r
}

// SetStubs sets how the runtime learns what the stub containers of a guest
// ask (built after the runtime, by whoever holds the registry).
func (r *Runtime) SetStubs(f StubsFunc) { r.stubs.Store(&f) }

// label is a label key with its prefix.
func (r *Runtime) label(key string) string { return r.prefix + "." + key }

// stopWait is how long a guest may take to show stopped after its task:
// an hastop task only asks the HA manager.
func (r *Runtime) stopWait(upid UPID) time.Duration {
	if upid.viaHA() {
		return r.haWait
	}
	return 5 * time.Second
}

// GuestID returns the container ID the watcher knows an LXC by, as
// inspected: "lxc/<node>/<vmid>", node being the label's.
func GuestID(node string, vmid int) string { return "lxc/" + node + "/" + strconv.Itoa(vmid) }

// VMID returns the container ID the watcher knows a QEMU VM by:
// "qemu/<node>/<vmid>".
func VMID(node string, vmid int) string { return "qemu/" + node + "/" + strconv.Itoa(vmid) }

// ParseGuestID is the inverse of GuestID and VMID.
func ParseGuestID(id string) (node string, vmid int, err error) {
	rest, ok := strings.CutPrefix(id, "lxc/")
	if !ok {
		rest, ok = strings.CutPrefix(id, "qemu/")
	}
	i := strings.LastIndexByte(rest, '/')
	if !ok || i <= 0 {
		return "", 0, fmt.Errorf("%q is not a proxmox guest id (lxc/<node>/<vmid>)", id)
	}
	vmid, err = strconv.Atoi(rest[i+1:])
	if err != nil || vmid <= 0 {
		return "", 0, fmt.Errorf("%q is not a proxmox guest id (lxc/<node>/<vmid>)", id)
	}
	return rest[:i], vmid, nil
}

// For returns the runtime of one guest. Its methods ignore the container ID
// they are given: the registry binds it to the node and VMID of a stub
// container's labels, and the stub's own Docker ID means nothing to PVE.
func (r *Runtime) For(node string, vmid int) watcher.Runtime { return r.guest(node, vmid) }

func (r *Runtime) guest(node string, vmid int) *Guest {
	return &Guest{rt: r, label: node, node: node, vmid: vmid, log: r.log.With("node", node, "vmid", vmid)}
}

func (r *Runtime) byID(id string) (*Guest, error) {
	node, vmid, err := ParseGuestID(id)
	if err != nil {
		return nil, err
	}
	return r.guest(node, vmid), nil
}

// Start implements watcher.Runtime for an ID made by GuestID.
func (r *Runtime) Start(ctx context.Context, id string) error {
	g, err := r.byID(id)
	if err != nil {
		return err
	}
	return g.Start(ctx, id)
}

// Stop implements watcher.Runtime for an ID made by GuestID.
func (r *Runtime) Stop(ctx context.Context, id string, opt watcher.StopOptions) error {
	g, err := r.byID(id)
	if err != nil {
		return err
	}
	return g.Stop(ctx, id, opt)
}

// Kill implements watcher.Runtime for an ID made by GuestID.
func (r *Runtime) Kill(ctx context.Context, id string, signal string) error {
	g, err := r.byID(id)
	if err != nil {
		return err
	}
	return g.Kill(ctx, id, signal)
}

// Pause implements watcher.Runtime: it always fails with ErrPauseUnsupported.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	g, err := r.byID(id)
	if err != nil {
		return err
	}
	return g.Pause(ctx, id)
}

// Unpause implements watcher.Runtime: it always fails with ErrPauseUnsupported.
func (r *Runtime) Unpause(ctx context.Context, id string) error {
	g, err := r.byID(id)
	if err != nil {
		return err
	}
	return g.Unpause(ctx, id)
}

// Inspect implements watcher.Runtime for an ID made by GuestID.
func (r *Runtime) Inspect(ctx context.Context, ref string) (watcher.Container, error) {
	g, err := r.byID(ref)
	if err != nil {
		return watcher.Container{}, err
	}
	return g.Inspect(ctx, ref)
}

// observe records a status and returns the StartedAt and FinishedAt to
// report, as Docker would: a running guest has its run's start and the end
// of the run before; a stopped one its last run's start and end.
func (r *Runtime) observe(k guestKey, running bool, uptime time.Duration, now time.Time) (started, finished time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.runs[k]
	if cur == nil {
		cur = &run{}
		r.runs[k] = cur
	}
	if !running {
		if cur.running {
			cur.running, cur.finished = false, now
		}
		return cur.started, cur.finished
	}
	est := now.Add(-uptime)
	switch {
	case cur.started.IsZero():
		cur.started = est
	case cur.running && est.Sub(cur.started).Abs() <= startedAtSlack:
		// The same run.
	case cur.running:
		// Restarted between two looks: a new run.
		cur.started = est
	case est.After(cur.finished.Add(-startedAtSlack)):
		// We saw the last run end, and this one began about then or later:
		// a new run, however close to the last one's start.
		if floor := cur.started.Add(time.Millisecond); est.Before(floor) {
			est = floor
		}
		cur.before, cur.started, cur.finished = cur.finished, est, time.Time{}
	default:
		// A "running" answer from before the stop we saw, handled late:
		// report the ended run with the FinishedAt before it, which the
		// watcher drops as older than what it has.
		return cur.started, cur.before
	}
	cur.running = true
	return cur.started, cur.before
}
