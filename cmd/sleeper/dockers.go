package main

import (
	"errors"
	"fmt"
	"sync"

	"sleeper/pkg/docker"
	"sleeper/pkg/metrics"
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
// identities, messages and metrics read as they always did; with several,
// every container is engine/name. sleeper_docker_up is 1 while every
// engine answers.
func newEngines(cfg config, rec *metrics.Recorder) (dockerEngines, error) {
	var es dockerEngines
	up := &upSet{rec: rec, up: map[string]bool{}}
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
		e.health = watcher.NewEngineHealth(watcher.EngineHealthConfig{Engine: name,
			OnChange: func(ok bool) { up.set(h.Name, ok, len(cfg.Engines)) }})
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
// (it is the registry's default), else every one, sleeper's own networks
// going with the first (the one it is awaited on).
func (es dockerEngines) registryEngines(self []string) map[string]watcher.Engine {
	if len(es) == 1 {
		return nil
	}
	m := map[string]watcher.Engine{}
	for i, e := range es {
		we := watcher.Engine{Runtime: e.dk, Finder: e.dk, Provider: docker.Provider, Health: e.health}
		if i == 0 && !e.host.Address.IsValid() {
			we.SelfNetworks = self
		}
		m[e.key] = we
	}
	return m
}

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

// upSet keeps sleeper_docker_up at 1 while every engine answers.
type upSet struct {
	rec *metrics.Recorder
	mu  sync.Mutex
	up  map[string]bool
}

func (u *upSet) set(name string, ok bool, n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.up[name] = ok
	all := len(u.up) == n
	for _, v := range u.up {
		all = all && v
	}
	u.rec.DockerUp(all)
}
