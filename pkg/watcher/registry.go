package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"sleeper/pkg/labels"
)

// RegistryConfig builds a Registry.
type RegistryConfig struct {
	Runtime      Runtime
	Log          *slog.Logger
	Recorder     Recorder
	Labels       labels.Options // Prefix, Domain, DefaultIdleTimeout; Name is set per container
	SelfNetworks []string
	// Finder looks up dependencies sleeper does not manage; nil means only
	// managed containers can be dependencies.
	Finder Finder
	// Proxmox drives LXC guests for stub containers; nil means stub
	// containers are a config error ("Proxmox support is not configured").
	Proxmox GuestRuntimes
	// Location is the time zone of keep-warm windows (--timezone); nil
	// means the process's.
	Location *time.Location
}

// GuestRuntimes hands out the runtime of one Proxmox LXC guest.
type GuestRuntimes interface {
	For(node string, vmid int) Runtime
}

// Providers, as the API shows them.
const (
	ProviderDocker  = "docker"
	ProviderProxmox = "proxmox"
)

// Registry holds one entry per labelled container, keyed by name so that a
// recreated container (new ID, same name) keeps its watcher and routes.
// It publishes an immutable Routes snapshot on every change.
type Registry struct {
	cfg    RegistryConfig
	log    *slog.Logger
	rec    Recorder
	routes atomic.Pointer[Routes]

	mu      sync.Mutex
	entries map[string]*entry
	changed chan struct{}

	// Unmanaged dependencies: who used each (by container ID) and which
	// ones sleeper started, so it stops only those, after their last user.
	depMu       sync.Mutex
	users       map[string]map[string]bool
	startedByUs map[string]bool
	stopping    map[string]chan struct{} // closed when that dependency's stop returns
	starts      singleflight.Group

	// guests holds the one runtime all stubs of a Proxmox guest share.
	guests map[guestKey]*sharedGuest // guarded by mu

	// lifetime bounds the registry's own goroutines (retried stops of
	// unmanaged dependencies, releases for removed dependents); Close
	// cancels it and waits for them. It is the registry's, not a request's.
	lifetime context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// entry is what the registry knows of one container. w is nil while the
// container is not managed: broken labels, or a route another one owns.
type entry struct {
	container Container
	spec      *labels.Spec
	err       error
	w         *Watcher
	// problems are errors a front door reported after the fact (a listen or
	// stream port that cannot be bound), keyed by what failed.
	problems map[string]string
	// guestErr is why the stub's Proxmox guest could not be inspected.
	guestErr string
	// cycle: the container is in a depends_on cycle (a config error).
	cycle bool
}

// NewRegistry returns an empty registry.
func NewRegistry(cfg RegistryConfig) *Registry {
	if cfg.Recorder == nil {
		cfg.Recorder = NopRecorder{}
	}
	lifetime, cancel := context.WithCancel(context.Background())
	r := &Registry{
		lifetime:    lifetime,
		cancel:      cancel,
		cfg:         cfg,
		log:         cfg.Log,
		rec:         cfg.Recorder,
		entries:     map[string]*entry{},
		changed:     make(chan struct{}),
		users:       map[string]map[string]bool{},
		startedByUs: map[string]bool{},
		stopping:    map[string]chan struct{}{},
		guests:      map[guestKey]*sharedGuest{},
	}
	r.routes.Store(newRoutes())
	return r
}

func (r *Registry) prefix() string {
	if r.cfg.Labels.Prefix == "" {
		return labels.DefaultPrefix
	}
	return r.cfg.Labels.Prefix
}

// Routes returns the current routing snapshot. It is a lock-free load.
func (r *Registry) Routes() *Routes { return r.routes.Load() }

// Changed returns a channel closed at the next change of the routes.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Apply records the inspected state of a container carrying the enable
// label: it parses the labels, creates or updates the watcher and feeds it
// the observation.
func (r *Registry) Apply(c Container) { r.ApplyAll([]Container{c}) }

// ApplyAll is Apply for many containers with one rebuild of the routes:
// discovery of a thousand containers must not rebuild a thousand times.
func (r *Registry) ApplyAll(cs []Container) {
	type parsed struct {
		c    Container
		spec labels.Spec
		err  error
	}
	var ps []parsed
	for _, c := range cs {
		opt := r.cfg.Labels
		opt.Name = c.Name
		spec, err := labels.Parse(c.Labels, opt)
		if errors.Is(err, labels.ErrNotEnabled) {
			r.Remove(c.Name)
			continue
		}
		for _, note := range spec.HostNotes {
			r.cfg.Log.Debug("host not taken from another tool's label", "container", c.Name, "note", note)
		}
		if err == nil && spec.Proxmox != nil && r.cfg.Proxmox == nil {
			err = fmt.Errorf("label %s.%s: Proxmox support is not configured (set --proxmox-url)", r.prefix(), labels.KeyProxmoxNode)
		}
		ps = append(ps, parsed{c, spec, err})
	}
	r.mu.Lock()
	var moved []*Watcher
	rebuild := false
	fresh := ps[:0]
	for _, p := range ps {
		m, changed, stale := r.recordLocked(p.c, p.spec, p.err)
		if stale {
			continue
		}
		fresh = append(fresh, p)
		moved = append(moved, m...)
		rebuild = rebuild || changed
	}
	ps = fresh
	var toClose []*Watcher
	if rebuild {
		toClose = r.rebuildLocked()
	}
	type observe struct {
		w *Watcher
		c Container
	}
	var obs []observe
	for _, p := range ps {
		// A stub's own Docker state means nothing: its guest is observed
		// through ObserveGuest.
		if e := r.entries[p.c.Name]; e != nil && e.w != nil && !isStub(e.spec) {
			obs = append(obs, observe{e.w, p.c})
		}
	}
	r.mu.Unlock()
	closeAll(append(moved, toClose...))
	for _, o := range obs {
		o.w.Observe(o.c)
	}
}

// recordLocked stores one parsed container in its entry. It returns the
// watchers to close and whether the routes may have changed. Callers hold r.mu.
func (r *Registry) recordLocked(c Container, spec labels.Spec, err error) (moved []*Watcher, changed, stale bool) {
	e := r.entries[c.Name]
	if e != nil && !c.InspectedAt.IsZero() && c.InspectedAt.Before(e.container.InspectedAt) {
		// An older inspect than the one applied (a relist racing a worker).
		return nil, false, true
	}
	if e == nil {
		e = &entry{}
		r.entries[c.Name] = e
		changed = true
	}
	prevErr := e.err
	if e.container.ID == c.ID && c.Created.Nanosecond() == 0 && c.Created.Equal(e.container.Created.Truncate(time.Second)) {
		// The list gives creation times in whole seconds, inspect to the
		// nanosecond: keep the finer one, which orders a recreate's two
		// containers created within the same second.
		c.Created = e.container.Created
	}
	changed = changed || !e.container.Created.Equal(c.Created)
	e.container = c
	if err != nil {
		changed = changed || e.spec != nil
		e.spec, e.err = nil, err
		if prevErr == nil || prevErr.Error() != err.Error() {
			r.log.Error("container not managed: bad labels", "container", c.Name, "error", err)
		}
	} else {
		changed = changed || e.spec == nil || !reflect.DeepEqual(*e.spec, spec)
		e.spec = &spec
		if e.w != nil && !reflect.DeepEqual(e.w.Spec().Proxmox, spec.Proxmox) {
			// Another guest (or none): the runtime is fixed at New, rebuild.
			moved, e.w = append(moved, e.w), nil
		} else if e.w != nil && !reflect.DeepEqual(*e.w.Spec(), spec) {
			e.w.Update(spec)
		}
	}
	r.rec.ConfigError(c.Name, err != nil || e.cycle)
	return moved, changed, false
}

// ReportProblem records (err != nil) or clears (err == nil) a problem a front
// door found with a container's routes after the fact, such as a port that
// cannot be bound. It shows as the container's error in List.
func (r *Registry) ReportProblem(name, what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		return
	}
	if err == nil {
		delete(e.problems, what)
		return
	}
	if e.problems == nil {
		e.problems = map[string]string{}
	}
	e.problems[what] = fmt.Sprintf("%s: %v", what, err)
}

// Remove forgets a container that is gone or no longer labelled.
func (r *Registry) Remove(name string) { r.RemoveIfOlder(name, time.Time{}) }

// RemoveIfOlder forgets a container unless the registry holds an
// observation of it made after seen (zero: always forget). A relist that
// found a name gone must not undo a newer container a worker just applied.
func (r *Registry) RemoveIfOlder(name string, seen time.Time) {
	r.mu.Lock()
	e, ok := r.entries[name]
	if !ok || (!seen.IsZero() && e.container.InspectedAt.After(seen)) {
		r.mu.Unlock()
		return
	}
	delete(r.entries, name)
	toClose := r.rebuildLocked()
	if e.w != nil {
		toClose = append(toClose, e.w)
	}
	r.mu.Unlock()
	closeAll(toClose)
	r.releaseGone(toClose)
	r.rec.Forget(name)
	r.log.Info("container forgotten", "container", name)
}

// Names returns the names of every container the registry knows.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Get returns the watcher of a managed container, or nil.
func (r *Registry) Get(name string) *Watcher {
	return r.Routes().ByName[name]
}

// List returns every known container, managed or not, sorted by name. A
// container that is not managed has only its name, ID and error.
func (r *Registry) List() []Info {
	r.mu.Lock()
	type pair struct {
		name string
		e    entry
	}
	all := make([]pair, 0, len(r.entries))
	for n, e := range r.entries {
		ec := *e
		ec.problems = maps.Clone(e.problems) // read after the lock is released
		all = append(all, pair{n, ec})
	}
	r.mu.Unlock()
	slices.SortFunc(all, func(a, b pair) int { return strings.Compare(a.name, b.name) })
	out := make([]Info, 0, len(all))
	for _, p := range all {
		info := Info{Name: p.name, ID: p.e.container.ID}
		if p.e.w != nil {
			info = p.e.w.Info()
		}
		var errs []string
		if p.e.err != nil {
			errs = append(errs, p.e.err.Error())
		}
		if info.Error != "" {
			errs = append(errs, info.Error)
		}
		if p.e.guestErr != "" {
			errs = append(errs, p.e.guestErr)
		}
		for _, k := range slices.Sorted(maps.Keys(p.e.problems)) {
			errs = append(errs, p.e.problems[k])
		}
		info.Error = strings.Join(errs, "; ")
		out = append(out, info)
	}
	return out
}

// Close closes every watcher and ends the registry's own goroutines.
// Containers are left exactly as they are.
func (r *Registry) Close() {
	defer r.wg.Wait()
	defer r.cancel()
	r.mu.Lock()
	var all []*Watcher
	for _, e := range r.entries {
		if e.w != nil {
			all = append(all, e.w)
			e.w = nil
		}
	}
	r.entries = map[string]*entry{}
	r.routes.Store(newRoutes())
	r.mu.Unlock()
	closeAll(all)
}

func closeAll(ws []*Watcher) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(w.Close)
	}
	wg.Wait()
}

// rebuildLocked recomputes the routes from every entry. Routes are claimed
// oldest container first, so during a compose recreate the running original
// keeps its hosts until it is destroyed and the replacement takes over. A
// container that loses a claim is not managed until the claim is free.
// It returns the watchers to close outside the lock.
func (r *Registry) rebuildLocked() []*Watcher {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		ea, eb := r.entries[a], r.entries[b]
		return cmp.Or(ea.container.Created.Compare(eb.container.Created), strings.Compare(a, b))
	})
	rt := newRoutes()
	deps, inCycle := r.depEdgesLocked(names)
	var toClose []*Watcher
	for _, name := range names {
		e := r.entries[name]
		if e.spec == nil {
			if e.w != nil {
				// The labels broke on a live container: it is no longer managed.
				toClose = append(toClose, e.w)
				e.w = nil
			}
			continue
		}
		err := rt.conflict(name, e.spec)
		cycle, inOne := inCycle[name]
		e.cycle = inOne
		if inOne {
			err = fmt.Errorf("label %s.%s: dependency cycle %s", r.prefix(), labels.KeyDependsOn, cycle)
		}
		// A cycle is a config error; a route conflict is not (every compose
		// recreate has one for a moment).
		r.rec.ConfigError(name, inOne)
		if err != nil {
			if e.err == nil || e.err.Error() != err.Error() {
				r.log.Error("container not managed: route conflict", "container", name, "error", err)
			}
			e.err = err
			if e.w != nil {
				toClose = append(toClose, e.w)
				e.w = nil
			}
			continue
		}
		e.err = nil
		if e.w == nil {
			cfg := Config{
				Name:         name,
				Spec:         *e.spec,
				Runtime:      r.cfg.Runtime,
				Provider:     ProviderDocker,
				Log:          r.log,
				Recorder:     r.rec,
				SelfNetworks: r.cfg.SelfNetworks,
				Graph:        r,
				Location:     r.cfg.Location,
			}
			if p := e.spec.Proxmox; p != nil {
				cfg.Runtime, cfg.Provider, cfg.SelfNetworks = r.guestRuntimeLocked(p.Node, p.VMID), ProviderProxmox, nil
			}
			e.w = New(cfg)
			if !isStub(e.spec) {
				e.w.Observe(e.container)
			}
			r.log.Info("watching container", "container", name, "hosts", e.spec.Hosts,
				"idle_timeout", e.spec.IdleTimeout.String())
		}
		rt.claim(e.w)
	}
	for from, tos := range deps {
		for _, to := range tos {
			if rt.ByName[from] != nil && rt.ByName[to] != nil {
				rt.deps[from] = append(rt.deps[from], to)
				rt.dependents[to] = append(rt.dependents[to], from)
			}
		}
	}
	// Groups sleep together through the same mechanism as stubs of one guest.
	rt.guestPeers = mergePeers(guestPeers(rt), groupPeers(rt))
	rt.groupMembers = groupMembers(rt)
	r.routes.Store(rt)
	close(r.changed)
	r.changed = make(chan struct{})
	return toClose
}
