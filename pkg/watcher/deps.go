package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"sleeper/pkg/labels"
)

// Compose labels that name a container's project and service.
const ()

// ErrDependencyNotFound means a depends_on entry names no container.
var ErrDependencyNotFound = errors.New("not found")

// Graph is what a watcher needs to know of the containers around it. The
// Registry implements it; a watcher without dependencies never calls it.
type Graph interface {
	// WakeDeps makes every dependency of w ready, independent ones in
	// parallel, reporting each step.
	WakeDeps(ctx context.Context, w *Watcher, report func(EventType, string)) error
	// DependentsAwake reports whether a managed container that depends on
	// the named one is awake: then it must not sleep.
	DependentsAwake(name string) bool
	// Released tells the graph that the named container went to sleep, so
	// its dependencies may follow.
	Released(ctx context.Context, name string)
	// SleepTogether reports whether the named container shares what it
	// runs on (a Proxmox guest) with others, which then decide its sleep
	// together; it is called under the watcher's lock and must not take it.
	SleepTogether(name string) bool
	// CreditsWorkload reports whether the named container is the one the
	// resource use of its workload is credited to: stubs of one Proxmox
	// guest free its memory once, not once each.
	CreditsWorkload(name string) bool
}

// Finder looks up containers that sleeper does not manage, for dependencies.
type Finder interface {
	// Inspect returns the current state of a container by its full ID.
	Inspect(ctx context.Context, id string) (Container, error)
	// FindName returns the container whose name is exactly name, or
	// ErrNotFound. It never matches an ID or an ID prefix: a depends_on
	// entry must not start a container that only happens to have an ID
	// beginning with that string.
	FindName(ctx context.Context, name string) (Container, error)
	// FindService returns the container of a compose project's service.
	FindService(ctx context.Context, project, service string) (Container, error)
}

// depTarget is a resolved dependency: a managed watcher, a container sleeper
// does not manage, or the entry of a labelled container that is not managed
// (bad labels, a cycle), which fails the wake with its reason.
type depTarget struct {
	w         *Watcher
	unmanaged Container
	broken    error
}

// depEngine is the engine a dependency runs on: the one it names, else
// the dependent's own.
func depEngine(from Container, d labels.Dependency) string {
	return cmp.Or(d.Engine, from.Engine)
}

// depName is how a dependency is told in reports: "engine:name" when it
// names an engine.
func depName(d labels.Dependency) string {
	if d.Engine == "" {
		return d.Name
	}
	return d.Engine + ":" + d.Name
}

// resolveEntryLocked finds a depends_on entry among the registry's entries
// on its engine: a container name, a service of the dependent's compose
// project, or "project/service". Callers hold r.mu.
func (r *Registry) resolveEntryLocked(from Container, d labels.Dependency) (string, *entry) {
	engine := depEngine(from, d)
	if key := Key(engine, d.Name); !strings.Contains(d.Name, "/") && r.entries[key] != nil {
		return key, r.entries[key]
	}
	return r.serviceEntryLocked(from, engine, d.Name)
}

// serviceEntryLocked finds the compose service a depends_on name means, for
// a plain name in the dependent's project or for "project/service".
// Callers hold r.mu.
func (r *Registry) serviceEntryLocked(from Container, engine, name string) (string, *entry) {
	project, service, qualified := strings.Cut(name, "/")
	if !qualified {
		project, service = from.Project, name
		if project == "" {
			return "", nil
		}
	}
	// During a compose recreate the old container and its replacement share
	// the labels: prefer the managed one, then the older one.
	var bestName string
	var best *entry
	for n, e := range r.entries {
		if e.container.Engine != engine || e.container.Project != project || e.container.Service != service {
			continue
		}
		if best == nil || (e.w != nil && best.w == nil) ||
			((e.w != nil) == (best.w != nil) && e.container.Created.Before(best.container.Created)) {
			bestName, best = n, e
		}
	}
	return bestName, best
}

// entryTarget turns a registry entry into a target; ok is false when the
// entry is neither managed nor broken (the finder must look further).
func entryTarget(name string, e *entry) (t depTarget, ok bool) {
	switch {
	case e == nil:
	case e.w != nil:
		t.w = e.w
	case e.err != nil:
		t.broken = fmt.Errorf("%s is not managed: %w", name, e.err)
	}
	return t, t.w != nil || t.broken != nil
}

// resolve finds the target of one dependency of the container from. An
// exact container name wins over a compose service of the same name; a
// container ID or ID prefix never matches (the engine's inspect would
// accept one, which is why names go through the finder's exact lookup).
func (r *Registry) resolve(ctx context.Context, from Container, d labels.Dependency) (depTarget, error) {
	engine := depEngine(from, d)
	eng, known := r.engineOf(engine)
	if !known {
		return depTarget{}, fmt.Errorf("engine %q is not configured", engine)
	}
	project, service, qualified := strings.Cut(d.Name, "/")
	if !qualified {
		key := Key(engine, d.Name)
		r.mu.Lock()
		t, ok := entryTarget(key, r.entries[key])
		r.mu.Unlock()
		if ok {
			return t, nil
		}
		if eng.Finder != nil {
			c, err := eng.Finder.FindName(ctx, d.Name)
			if err == nil {
				c.Engine = engine
				return depTarget{unmanaged: c}, nil
			}
			if !errors.Is(err, ErrNotFound) {
				return depTarget{}, err
			}
		}
		project, service = from.Project, d.Name
		if project == "" {
			return depTarget{}, ErrDependencyNotFound
		}
	}
	r.mu.Lock()
	t, ok := entryTarget(r.serviceEntryLocked(from, engine, d.Name))
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	if eng.Finder == nil {
		return depTarget{}, ErrDependencyNotFound
	}
	c, err := eng.Finder.FindService(ctx, project, service)
	if errors.Is(err, ErrNotFound) {
		return depTarget{}, ErrDependencyNotFound
	}
	c.Engine = engine
	return depTarget{unmanaged: c}, err
}

// WakeDeps implements Graph.
func (r *Registry) WakeDeps(ctx context.Context, w *Watcher, report func(EventType, string)) error {
	deps := w.Spec().DependsOn
	if len(deps) == 0 {
		return nil
	}
	from := w.Observed()
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range deps {
		g.Go(func() error {
			report(EventDependencyWaking, "starting "+depName(d))
			if err := r.wakeDep(gctx, w.Name(), from, d); err != nil {
				return &DependencyError{Name: depName(d), Err: err}
			}
			report(EventDependencyReady, depName(d)+" ready")
			return nil
		})
	}
	return g.Wait()
}

func (r *Registry) wakeDep(ctx context.Context, dependent string, from Container, d labels.Dependency) error {
	t, err := r.resolve(ctx, from, d)
	switch {
	case err != nil:
		return err
	case t.broken != nil:
		return t.broken
	case t.w != nil:
		if _, err := t.w.Wait(ctx); err != nil {
			return err
		}
		if d.Healthy {
			return t.w.AwaitHealthy(ctx)
		}
		return nil
	default:
		return r.wakeUnmanaged(ctx, dependent, t.unmanaged, d.Healthy)
	}
}

// wakeUnmanaged starts a container sleeper does not manage (one start however
// many dependents wake at once) and waits until it runs, or is healthy. Its
// events are not in sleeper's label-filtered stream, so this polls, for the
// length of the wake only.
func (r *Registry) wakeUnmanaged(ctx context.Context, dependent string, c Container, healthy bool) error {
	// A stop of this dependency (its last dependent went to sleep) may be
	// under way: let it finish, then start it again, rather than count on
	// a container that is about to go down.
	// Noting the user and reading the stop in one section: a Released that
	// comes after either sees this dependent, one that came before has
	// registered its stop.
	eng, _ := r.engineOf(c.Engine)
	rt := eng.Runtime
	if c.Engine != "" {
		rt = wrapEngine(c.Engine, rt, eng.Health)
	}
	if stopping := r.unmanaged.use(c.ID, dependent, rt); stopping != nil {
		select {
		case <-stopping:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		r.unmanaged.use(c.ID, dependent, rt) // the stop forgot the users
	}
	err := r.unmanaged.start(ctx, c.ID, func(ctx context.Context) (bool, error) {
		cur, err := eng.Finder.Inspect(ctx, c.ID)
		if err != nil {
			return false, err
		}
		switch cur.Status {
		case StatusPaused:
			return false, rt.Unpause(ctx, c.ID)
		case StatusRunning, StatusRestarting:
			return false, nil
		}
		if err := rt.Start(ctx, c.ID); err != nil {
			return false, fmt.Errorf("start: %w", err)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if healthy && c.Health == HealthNone {
		return ErrNoHealthCheck
	}
	return r.awaitUnmanaged(ctx, c, healthy)
}

// awaitUnmanaged polls a started unmanaged dependency until it runs, or is
// healthy, following its health URL meanwhile when it has one.
func (r *Registry) awaitUnmanaged(ctx context.Context, c Container, healthy bool) error {
	// The probing is joined before returning: it ends with this wait.
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	var passed <-chan struct{} // nil until the health URL is followed
	eng, _ := r.engineOf(c.Engine)
	finder := eng.Finder
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		cur, err := finder.Inspect(ctx, c.ID)
		if err != nil {
			return err
		}
		if healthy && passed == nil && cur.Awake() {
			// Published ports exist only once it runs: build the probe now.
			passed = r.fastHealth(pctx, &wg, cur, eng.SelfNetworks)
		}
		switch {
		case cur.Status == StatusStopped && cur.StartedAt.After(c.StartedAt):
			return exitedError(cur)
		case cur.Awake() && (!healthy || cur.Health == HealthHealthy):
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-passed:
			return nil
		case <-t.C:
		}
	}
}

// fastHealth follows a ":healthy" unmanaged dependency's health URL at the
// wake's cadence, as a managed one's is: the returned channel closes when
// its own test passes, and never when there is nothing to follow. The
// probing ends with ctx, and wg waits for it.
func (r *Registry) fastHealth(ctx context.Context, wg *sync.WaitGroup, c Container, self []string) <-chan struct{} {
	never := make(chan struct{})
	p := newProber()
	probe := unmanagedHealthProbe(p, c, self)
	if probe == nil {
		p.close()
		return never
	}
	passed := make(chan struct{})
	wg.Go(func() {
		defer p.close()
		if pollUntil(ctx, probe, time.Millisecond, 10*time.Millisecond) {
			close(passed)
		}
	})
	return passed
}

// DependentsAwake implements Graph. It reads the routes snapshot and atomic
// states only, so a watcher may call it while holding its own lock.
func (r *Registry) DependentsAwake(name string) bool {
	rt := r.Routes()
	for _, dn := range rt.dependents[name] {
		if w := rt.ByName[dn]; w != nil && w.Awake() {
			return true
		}
	}
	return false
}

// Released implements Graph: managed dependencies re-check their idle time;
// unmanaged ones that sleeper started are stopped once no dependent that
// used them is awake. Those that were running already are left alone.
func (r *Registry) Released(ctx context.Context, name string) {
	rt := r.Routes()
	for _, dn := range rt.deps[name] {
		if w := rt.ByName[dn]; w != nil {
			w.checkIdle()
		}
	}
	for _, id := range r.unmanaged.usedBy(name) {
		r.unmanaged.stopUnused(ctx, id, name, 0)
	}
}

// releaseGone releases, in the background, what sleeper started for
// dependents that were removed, once the engine confirms that no container
// holds the name any more. A container that lost only its labels (a
// recreate without them) still runs and may use its dependencies: it is no
// longer sleeper's to decide for, so they are left as they are.
func (r *Registry) releaseGone(ws []*Watcher) {
	rt := r.Routes()
	for _, w := range ws {
		if rt.ByName[w.name] != nil || len(w.Spec().DependsOn) == 0 || w.workload != "" {
			continue
		}
		name := w.name
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			ctx, cancel := context.WithTimeout(r.lifetime, time.Minute)
			defer cancel()
			engine, bare := SplitKey(name)
			if eng, _ := r.engineOf(engine); eng.Finder != nil {
				if _, err := eng.Finder.FindName(ctx, bare); !errors.Is(err, ErrNotFound) {
					return
				}
			}
			r.Released(ctx, name)
		}()
	}
}

// depEdgesLocked resolves depends_on among managed entries (by name) and
// finds cycles. Callers hold r.mu.
func (r *Registry) depEdgesLocked(names []string) (deps map[string][]string, inCycle map[string]string) {
	deps = map[string][]string{}
	for _, n := range names {
		e := r.entries[n]
		if e.spec == nil {
			continue
		}
		for _, d := range e.spec.DependsOn {
			if dn, de := r.resolveEntryLocked(e.container, d); de != nil && de.spec != nil {
				deps[n] = append(deps[n], dn)
			}
		}
	}
	inCycle = map[string]string{}
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(n string)
	visit = func(n string) {
		mark[n] = onPath
		path = append(path, n)
		for _, m := range deps[n] {
			switch mark[m] {
			case unseen:
				visit(m)
			case onPath:
				i := slices.Index(path, m)
				cycle := strings.Join(append(slices.Clone(path[i:]), m), " → ")
				for _, c := range path[i:] {
					inCycle[c] = cycle
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
	}
	for _, n := range names {
		if mark[n] == unseen {
			visit(n)
		}
	}
	return deps, inCycle
}
