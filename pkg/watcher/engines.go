package watcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Engine is one source of containers among several (one Docker engine of
// many, say): what drives its containers, finds its unmanaged dependencies
// and dials them. Containers carry the name of the engine they came from
// (Container.Engine); the registry picks the Engine by that name.
type Engine struct {
	Runtime Runtime
	// Finder looks up the engine's containers sleeper does not manage, for
	// dependencies; nil means only managed ones.
	Finder Finder
	// Provider names the engine's provider in the API ("provider" field).
	Provider string
	// SelfNetworks are the networks sleeper's own container shares on this
	// engine; nil for an engine on another host, whose bridge addresses
	// sleeper cannot dial.
	SelfNetworks []string
	// Health says whether the engine answers. While it does not, its
	// containers show it in the API and their wakes fail at once, naming
	// the engine, rather than wait for a timeout. May be nil.
	Health *EngineHealth
}

// Key is a container's identity in the registry, the API, the logs and the
// metrics: its name when it comes from the default engine (""), else
// "engine/name". Container names never hold a slash, so Key is reversible.
func Key(engine, name string) string {
	if engine == "" {
		return name
	}
	return engine + "/" + name
}

// SplitKey undoes Key.
func SplitKey(key string) (engine, name string) {
	if e, n, ok := strings.Cut(key, "/"); ok {
		return e, n
	}
	return "", key
}

// engineOf returns the Engine a container of that engine name is driven
// by: the registry's default one for "", else the named one; ok is false
// for a name the registry does not know.
func (r *Registry) engineOf(name string) (e Engine, ok bool) {
	if name == "" {
		e, ok = Engine{Runtime: r.cfg.Runtime, Finder: r.cfg.Finder, Provider: r.cfg.Provider,
			SelfNetworks: r.cfg.SelfNetworks}, true
	} else {
		e, ok = r.cfg.Engines[name]
	}
	if nets, set := r.self.get(name); set {
		e.SelfNetworks = nets
	}
	return e, ok
}

// SetSelfNetworks records sleeper's own networks on an engine ("" the
// default one), replacing the configured ones. They are only known once
// the engine answers, and sleeper starts without waiting for any engine:
// its caller sets them before the engine's containers are first listed, so
// that every watcher of the engine is built with them.
func (r *Registry) SetSelfNetworks(engine string, nets []string) { r.self.set(engine, nets) }

// selfNetworks are the networks SetSelfNetworks learnt, by engine.
type selfNetworks struct {
	mu   sync.RWMutex
	nets map[string][]string
}

func (s *selfNetworks) get(engine string) ([]string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	nets, ok := s.nets[engine]
	return nets, ok
}

func (s *selfNetworks) set(engine string, nets []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nets == nil {
		s.nets = map[string][]string{}
	}
	s.nets[engine] = nets
}

// EngineError is the answer for a container whose engine does not answer:
// a wake fails with it at once, naming the engine.
type EngineError struct {
	Engine string
	Err    error
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("engine %s unreachable: %v", e.Engine, e.Err)
}

func (e *EngineError) Unwrap() error { return e.Err }

// engineRuntime is the Runtime of one engine among several: while the
// engine is known to be down it fails every call at once with an
// EngineError, and it names the engine in the errors of the calls it makes.
type engineRuntime struct {
	Runtime
	name   string
	health *EngineHealth
}

func (e engineRuntime) check() error {
	if e.health != nil && !e.health.Up() {
		return &EngineError{Engine: e.name, Err: e.health.LastError()}
	}
	return nil
}

func (e engineRuntime) wrap(err error) error {
	if err == nil || e.health == nil || e.health.Up() {
		return err
	}
	return &EngineError{Engine: e.name, Err: err}
}

// Start implements Runtime.
func (e engineRuntime) Start(ctx context.Context, id string) error {
	if err := e.check(); err != nil {
		return err
	}
	return e.wrap(e.Runtime.Start(ctx, id))
}

// Stop implements Runtime.
func (e engineRuntime) Stop(ctx context.Context, id string, opt StopOptions) error {
	if err := e.check(); err != nil {
		return err
	}
	return e.wrap(e.Runtime.Stop(ctx, id, opt))
}

// Kill implements Runtime.
func (e engineRuntime) Kill(ctx context.Context, id string, signal string) error {
	if err := e.check(); err != nil {
		return err
	}
	return e.wrap(e.Runtime.Kill(ctx, id, signal))
}

// Pause implements Runtime.
func (e engineRuntime) Pause(ctx context.Context, id string) error {
	if err := e.check(); err != nil {
		return err
	}
	return e.wrap(e.Runtime.Pause(ctx, id))
}

// Unpause implements Runtime.
func (e engineRuntime) Unpause(ctx context.Context, id string) error {
	if err := e.check(); err != nil {
		return err
	}
	return e.wrap(e.Runtime.Unpause(ctx, id))
}

// Inspect implements Runtime.
func (e engineRuntime) Inspect(ctx context.Context, ref string) (Container, error) {
	if err := e.check(); err != nil {
		return Container{}, err
	}
	c, err := e.Runtime.Inspect(ctx, ref)
	return c, e.wrap(err)
}

// engineExecRuntime is an engineRuntime whose runtime can exec.
type engineExecRuntime struct{ engineRuntime }

// wrapEngine returns the runtime of the named engine, failing fast while
// health says it is down; it is an Execer, and Stats, exactly when rt is.
func wrapEngine(name string, rt Runtime, health *EngineHealth) Runtime {
	e := engineRuntime{Runtime: rt, name: name, health: health}
	_, exec := rt.(Execer)
	_, stats := rt.(Stats)
	switch {
	case exec && stats:
		return engineExecStatsRuntime{engineExecRuntime{e}}
	case exec:
		return engineExecRuntime{e}
	case stats:
		return engineStatsRuntime{e}
	}
	return e
}

// engineStatsRuntime is an engineRuntime whose runtime reads usage; the
// wrapper claims Stats only then, as callers find it by type assertion.
type engineStatsRuntime struct{ engineRuntime }

// Stats implements Stats.
func (e engineStatsRuntime) Stats(ctx context.Context, id string, cpu bool) (Usage, error) {
	return e.stats(ctx, id, cpu)
}

// engineExecStatsRuntime can both exec and read usage.
type engineExecStatsRuntime struct{ engineExecRuntime }

// Stats implements Stats.
func (e engineExecStatsRuntime) Stats(ctx context.Context, id string, cpu bool) (Usage, error) {
	return e.stats(ctx, id, cpu)
}

// Exec implements Execer.
func (e engineExecRuntime) Exec(ctx context.Context, id string, cmd []string) (int, error) {
	x := e.Runtime.(Execer)
	if err := e.check(); err != nil {
		return 0, err
	}
	code, err := x.Exec(ctx, id, cmd)
	return code, e.wrap(err)
}

// errNoStats is what a wrapped runtime without Stats answers for them.
var errNoStats = errors.New("the runtime cannot read usage")

// stats is Stats for the wrappers whose runtime has it: the busy guard and
// the memory freed by a sleep must not be lost behind the wrapper.
func (e engineRuntime) stats(ctx context.Context, id string, cpu bool) (Usage, error) {
	if err := e.check(); err != nil {
		return Usage{}, err
	}
	s, ok := e.Runtime.(Stats)
	if !ok {
		return Usage{}, errNoStats
	}
	u, err := s.Stats(ctx, id, cpu)
	return u, e.wrap(err)
}
