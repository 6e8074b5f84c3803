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
	// Provider names Runtime's provider in the API ("provider" field).
	Provider string
	// Targets says which containers are stubs for a workload another
	// provider drives; nil means every container is its own workload.
	Targets Targets
	// Location is the time zone of keep-warm windows (--timezone); nil
	// means the process's.
	Location *time.Location
	// Engines are the named engines beside the default one (Runtime,
	// Finder, Provider, SelfNetworks), by the name their containers carry
	// in Container.Engine. A container of an engine not listed is a
	// config error.
	Engines map[string]Engine
}

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

	// self are the engines' own networks learnt after start (engines.go).
	self selfNetworks

	// unmanaged keeps the dependencies sleeper does not manage (unmanaged.go).
	unmanaged *unmanagedDeps

	// shared holds, by Target.Key, the one runtime all stubs of a
	// workload share.
	shared map[string]*sharedRuntime // guarded by mu

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
	// target is the workload the container is a stub for; nil when the
	// container is its own workload.
	target *Target
	// targetErr is why the stub's workload could not be inspected.
	targetErr string
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
		lifetime: lifetime,
		cancel:   cancel,
		cfg:      cfg,
		log:      cfg.Log,
		rec:      cfg.Recorder,
		entries:  map[string]*entry{},
		changed:  make(chan struct{}),
		shared:   map[string]*sharedRuntime{},
	}
	r.routes.Store(newRoutes())
	r.unmanaged = newUnmanagedDeps(lifetime, &r.wg, cfg.Log, func(dependent string) bool {
		w := r.Routes().ByName[dependent]
		return w != nil && w.Awake()
	})
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

// parsed is one container with its parsed labels, before it is recorded.
type parsed struct {
	c      Container
	spec   labels.Spec
	target *Target
	err    error
}

// parseAll parses the labels of each container and asks Targets what it
// stands for, outside the lock. A container whose enable label is gone is
// removed instead.
func (r *Registry) parseAll(cs []Container) []parsed {
	var ps []parsed
	for _, c := range cs {
		opt := r.cfg.Labels
		opt.Name = c.Name
		spec, err := labels.Parse(c.Labels, opt)
		if errors.Is(err, labels.ErrNotEnabled) {
			r.Remove(Key(c.Engine, c.Name))
			continue
		}
		if _, ok := r.engineOf(c.Engine); !ok && err == nil {
			err = fmt.Errorf("engine %q is not configured", c.Engine)
		}
		for _, note := range spec.HostNotes {
			r.log.Debug("host not taken from another tool's label", "container", c.Name, "note", note)
		}
		var target *Target
		if err == nil && r.cfg.Targets != nil {
			if t, ok, terr := r.cfg.Targets.Target(spec); terr != nil {
				err = terr
			} else if ok {
				target = &t
			}
		}
		ps = append(ps, parsed{c, spec, target, err})
	}
	return ps
}

// ApplyAll is Apply for many containers with one rebuild of the routes:
// discovery of a thousand containers must not rebuild a thousand times.
func (r *Registry) ApplyAll(cs []Container) {
	ps := r.parseAll(cs)
	r.mu.Lock()
	var moved []*Watcher
	rebuild := false
	fresh := ps[:0]
	for _, p := range ps {
		m, changed, stale := r.recordLocked(p.c, p.spec, p.target, p.err)
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
		// A stub's own state means nothing: its workload is observed
		// through ObserveStub.
		if e := r.entries[Key(p.c.Engine, p.c.Name)]; e != nil && e.w != nil && e.target == nil {
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
func (r *Registry) recordLocked(c Container, spec labels.Spec, target *Target, err error) (moved []*Watcher, changed, stale bool) {
	key := Key(c.Engine, c.Name)
	e := r.entries[key]
	if e != nil && !c.InspectedAt.IsZero() && c.InspectedAt.Before(e.container.InspectedAt) {
		// An older inspect than the one applied (a relist racing a worker).
		return nil, false, true
	}
	if e == nil {
		e = &entry{}
		r.entries[key] = e
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
			r.log.Error("container not managed: bad labels", "container", key, "error", err)
		}
	} else {
		changed = changed || e.spec == nil || !reflect.DeepEqual(*e.spec, spec)
		e.spec, e.target = &spec, target
		if e.w != nil && e.w.workload != targetKey(target) {
			// Another workload (or none): the runtime is fixed at New, rebuild.
			moved, e.w = append(moved, e.w), nil
		} else if e.w != nil && !reflect.DeepEqual(*e.w.Spec(), spec) {
			e.w.Update(spec)
		}
	}
	r.rec.ConfigError(key, err != nil || e.cycle)
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

// NamesOn returns the names (not keys) of the containers the registry
// knows from one engine, sorted: what that engine's reconciler relists.
func (r *Registry) NamesOn(engine string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for k := range r.entries {
		if en, n := SplitKey(k); en == engine {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Names returns the keys (see Key) of every container the registry knows.
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
		eng, _ := r.engineOf(p.e.container.Engine)
		info := Info{Name: p.name, ID: p.e.container.ID, Provider: eng.Provider}
		if p.e.target != nil {
			info.Provider = p.e.target.Provider
		}
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
		if p.e.targetErr != "" {
			errs = append(errs, p.e.targetErr)
		}
		if eng.Health != nil && !eng.Health.Up() {
			errs = append(errs, (&EngineError{Engine: p.e.container.Engine, Err: eng.Health.LastError()}).Error())
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
	names := r.namesByAgeLocked()
	rt := newRoutes()
	deps, inCycle := r.depEdgesLocked(names)
	var toClose []*Watcher
	for _, name := range names {
		if w := r.manageLocked(name, rt, inCycle); w != nil {
			toClose = append(toClose, w)
		}
	}
	for from, tos := range deps {
		for _, to := range tos {
			if rt.ByName[from] != nil && rt.ByName[to] != nil {
				rt.deps[from] = append(rt.deps[from], to)
				rt.dependents[to] = append(rt.dependents[to], from)
			}
		}
	}
	// Groups sleep together through the same mechanism as stubs of one
	// workload.
	rt.peers = mergePeers(sharedPeers(rt), groupPeers(rt))
	rt.groupMembers = groupMembers(rt)
	r.routes.Store(rt)
	close(r.changed)
	r.changed = make(chan struct{})
	return toClose
}

// namesByAgeLocked returns every entry's name, oldest container first.
// Callers hold r.mu.
func (r *Registry) namesByAgeLocked() []string {
	names := slices.Collect(maps.Keys(r.entries))
	slices.SortFunc(names, func(a, b string) int {
		ea, eb := r.entries[a], r.entries[b]
		return cmp.Or(ea.container.Created.Compare(eb.container.Created), strings.Compare(a, b))
	})
	return names
}

// manageLocked decides whether one entry is managed in rt: it claims the
// entry's routes, building its watcher if need be, or it returns the
// watcher to close (nil when there is none). Callers hold r.mu.
func (r *Registry) manageLocked(name string, rt *Routes, inCycle map[string]string) (toClose *Watcher) {
	e := r.entries[name]
	if e.spec == nil {
		// The labels broke on a live container: it is no longer managed.
		toClose, e.w = e.w, nil
		return toClose
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
		toClose, e.w = e.w, nil
		return toClose
	}
	e.err = nil
	if e.w == nil {
		e.w = r.newWatcherLocked(name, e)
	}
	rt.claim(e.w)
	return nil
}

// newWatcherLocked builds the watcher of a container that became managed.
// A stub is driven by the runtime its workload's stubs share, and learns
// its state from ObserveStub, not from its own. Callers hold r.mu.
func (r *Registry) newWatcherLocked(name string, e *entry) *Watcher {
	eng, _ := r.engineOf(e.container.Engine)
	rt := eng.Runtime
	if e.container.Engine != "" {
		rt = wrapEngine(e.container.Engine, rt, eng.Health)
	}
	cfg := Config{
		Name:         name,
		Spec:         *e.spec,
		Runtime:      rt,
		Provider:     eng.Provider,
		Log:          r.log,
		Recorder:     r.rec,
		SelfNetworks: eng.SelfNetworks,
		Graph:        r,
		Location:     r.cfg.Location,
	}
	if t := e.target; t != nil {
		// Sleeper's own networks are the main runtime's: a stub's workload
		// is dialled at the address its own runtime reports.
		cfg.Runtime, cfg.Provider, cfg.SelfNetworks = r.sharedRuntimeLocked(*t), t.Provider, nil
		cfg.Workload = t.Key
	}
	w := New(cfg)
	if e.target == nil {
		w.Observe(e.container)
	}
	r.log.Info("watching container", "container", name, "hosts", e.spec.Hosts,
		"idle_timeout", e.spec.IdleTimeout.String())
	return w
}

// targetKey is the Key of t, "" for a container that is its own workload.
func targetKey(t *Target) string {
	if t == nil {
		return ""
	}
	return t.Key
}
