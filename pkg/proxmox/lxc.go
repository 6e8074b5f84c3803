package proxmox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"sleeper/pkg/watcher"
)

var (
	_ watcher.Runtime = (*Runtime)(nil)
	_ watcher.Runtime = (*Guest)(nil)
)

// ErrPauseUnsupported is returned by Pause and Unpause: PVE's suspend for
// LXC is experimental (CRIU) and reports the guest stopped afterwards.
var ErrPauseUnsupported = errors.New("pause is not supported for Proxmox LXC")

// NetworkName is the name of the one network an inspected guest is on, so
// that watcher.ResolveAddr dials its address.
const NetworkName = "lxc"

// Defaults of RuntimeConfig and of a stop without a timeout.
const (
	DefaultAddressWait     = 15 * time.Second
	defaultShutdownTimeout = 10 * time.Second
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
}

// Runtime drives the LXC guests of one PVE cluster. It implements
// watcher.Runtime for IDs made by GuestID, and For binds one guest so that
// the container IDs the watcher passes do not matter.
type Runtime struct {
	client   *Client
	poller   *Poller
	log      *slog.Logger
	addrWait time.Duration

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
	return &Runtime{
		client:   cfg.Client,
		poller:   cfg.Poller,
		log:      cfg.Log,
		addrWait: cfg.AddressWait,
		runs:     map[guestKey]*run{},
	}
}

// GuestID returns the container ID the watcher knows a guest by, as
// inspected: "lxc/<node>/<vmid>".
func GuestID(node string, vmid int) string { return "lxc/" + node + "/" + strconv.Itoa(vmid) }

// ParseGuestID is the inverse of GuestID.
func ParseGuestID(id string) (node string, vmid int, err error) {
	rest, ok := strings.CutPrefix(id, "lxc/")
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
	return &Guest{rt: r, node: node, vmid: vmid, log: r.log.With("node", node, "vmid", vmid)}
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

// fast holds the poller in fast mode until the returned func is called.
func (r *Runtime) fast() func() {
	if r.poller == nil {
		return func() {}
	}
	return r.poller.Fast()
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
