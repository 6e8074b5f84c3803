package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sleeper/pkg/docker"
	"sleeper/pkg/metrics"
	"sleeper/pkg/proxy"
	"sleeper/pkg/watcher"
)

// dockerEngine is one Docker engine sleeper drives, with its health.
type dockerEngine struct {
	host   engineHost
	key    string // Container.Engine of its containers: "" when it is the only engine
	dk     *docker.Docker
	health *watcher.EngineHealth
}

// logName names the engine in log messages ("docker", or "docker nas").
func (e dockerEngine) logName() string {
	if e.key == "" {
		return docker.Provider
	}
	return docker.Provider + " " + e.key
}

// dockerEngines are the engines of --docker-host, the first one first.
type dockerEngines []dockerEngine

// newEngines builds a client and a health per engine. With one engine,
// identities, messages and metrics read as they always did (engine ""); with
// several, every container is engine/name. Each engine's sleeper_docker_up
// series is there from the start, at 0 until the engine first answers.
func newEngines(cfg config, rec *metrics.Recorder) (dockerEngines, error) {
	var es dockerEngines
	for _, h := range cfg.Engines {
		dk, err := docker.NewWith(docker.Options{Host: h.Host, Prefix: cfg.LabelPrefix, HostAddress: h.Address})
		if err != nil {
			es.close()
			return nil, fmt.Errorf("engine %s: %w", h.Name, err)
		}
		e := dockerEngine{host: h, dk: dk}
		name := docker.Provider + " engine"
		if len(cfg.Engines) > 1 {
			e.key = h.Name
			name += " " + h.Name
		}
		rec.DockerUp(e.key, false)
		e.health = watcher.NewEngineHealth(watcher.EngineHealthConfig{Engine: name,
			OnChange: func(ok bool) { rec.DockerUp(e.key, ok) }})
		es = append(es, e)
	}
	return es, nil
}

func (es dockerEngines) close() {
	for _, e := range es {
		_ = e.dk.Close()
	}
}

// registryEngines are the registry's named engines: none with one engine
// (it is the registry's default), else every one. Sleeper's own networks
// are learnt later, from whichever engine hosts it (see run).
func (es dockerEngines) registryEngines() map[string]watcher.Engine {
	if len(es) == 1 {
		return nil
	}
	m := map[string]watcher.Engine{}
	for _, e := range es {
		m[e.key] = watcher.Engine{Runtime: e.dk, Finder: e.dk, Provider: docker.Provider, Health: e.health}
	}
	return m
}

// run awaits the engine on its own, tells reg sleeper's networks on it,
// then reconciles its containers until ctx ends: an engine that is down at
// start holds up nothing but its own containers. Every engine is asked for
// sleeper's own container: the one that hosts it answers with its
// networks, the others (and every engine when sleeper runs on the host)
// with none, so a remote engine's bridge addresses are never dialled.
//
// An engine that refuses sleeper for good (an API version it will not
// speak) stops sleeper when it is the only one; beside others it is shown
// down, and only its own containers fail.
func (e dockerEngine) run(ctx context.Context, reg *watcher.Registry, rc *watcher.Reconciler, log *slog.Logger, alone bool) error {
	log = log.With("engine", e.logName())
	self, err := awaitEngine(ctx, e.dk, e.health, log)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil // shutting down before the engine answered is not an error
	case err != nil && alone:
		return fmt.Errorf("engine %s: %w", e.logName(), err)
	case err != nil:
		log.Error("engine refused: its containers are not served; the other engines are", "error", err)
		e.health.EngineDown(err)
		return nil
	}
	reg.SetSelfNetworks(e.key, self)
	return rc.Run(ctx)
}

// allSynced returns a channel closed once every source has listed its
// engine in full (each of synced is closed), or discoveryBound after the
// first one did: the proxy holds a request for an unknown host until then,
// and an engine that stays down must not make every such request wait. It
// ends with ctx.
func allSynced(synced []<-chan struct{}) (<-chan struct{}, func(context.Context) error) {
	done := make(chan struct{})
	return done, func(ctx context.Context) error {
		first := make(chan struct{}, len(synced))
		var wg sync.WaitGroup
		for _, ch := range synced {
			wg.Go(func() {
				select {
				case <-ch:
					first <- struct{}{}
				case <-ctx.Done():
				}
			})
		}
		all := make(chan struct{})
		go func() { wg.Wait(); close(all) }()
		defer func() { <-all }()
		select {
		case <-first:
		case <-all:
		}
		t := time.NewTimer(discoveryBound)
		defer t.Stop()
		select {
		case <-all:
		case <-t.C:
		}
		if ctx.Err() == nil {
			close(done)
		}
		return nil
	}
}

// discoveryBound is how long after the first engine is listed sleeper
// stops waiting for the others before calling discovery done.
const discoveryBound = proxy.DiscoveryWait

// health is /healthz: with several engines sleeper is healthy while one of
// them is (the others' containers show their engine as unreachable).
func (es dockerEngines) health() anyHealthy {
	var hs anyHealthy
	for _, e := range es {
		hs = append(hs, e.health)
	}
	return hs
}

// anyHealthy passes when one engine's health does.
type anyHealthy []*watcher.EngineHealth

// Check implements admin.Health.
func (hs anyHealthy) Check() error {
	var errs []error
	for _, h := range hs {
		err := h.Check()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
