package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"sleeper/pkg/metrics"
	swarmprov "sleeper/pkg/swarm"
	"sleeper/pkg/watcher"
)

// swarmMode is whether an engine's Swarm services are managed.
type swarmMode int

const (
	// swarmAuto: when the engine first answers, manage its services if it
	// is an active swarm manager (and no other engine already manages that
	// swarm).
	swarmAuto swarmMode = iota
	// swarmOn: manage its services whatever it says; while it is not a
	// manager its services engine shows unreachable and is retried.
	swarmOn
	// swarmOff: never.
	swarmOff
)

// swarmSetting is the --swarm flag: auto (the default), true/on, false/off,
// or a comma list of engine names (on for those, off for the others). A
// bare --swarm is true.
type swarmSetting struct {
	mode    swarmMode
	engines []string // the named engines, when set by a list
}

func (s *swarmSetting) String() string {
	switch {
	case s == nil:
		return "auto"
	case s.engines != nil:
		return strings.Join(s.engines, ",")
	case s.mode == swarmOn:
		return "true"
	case s.mode == swarmOff:
		return "false"
	}
	return "auto"
}

// IsBoolFlag lets --swarm stand alone, meaning true.
func (s *swarmSetting) IsBoolFlag() bool { return true }

// Set implements flag.Value.
func (s *swarmSetting) Set(v string) error {
	*s = swarmSetting{}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "auto", "":
		return nil
	case "true", "on", "1", "yes":
		s.mode = swarmOn
		return nil
	case "false", "off", "0", "no":
		s.mode = swarmOff
		return nil
	}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if !validEngineName(item) {
			return fmt.Errorf("%q: want auto, true, false or a comma list of engine names", v)
		}
		s.engines = append(s.engines, item)
	}
	return nil
}

// modeFor is the setting for one engine.
func (s swarmSetting) modeFor(engine string) swarmMode {
	if s.engines == nil {
		return s.mode
	}
	if slices.Contains(s.engines, engine) {
		return swarmOn
	}
	return swarmOff
}

// check refuses a list naming an engine --docker-host does not give.
func (s swarmSetting) check(engines []engineHost) error {
	for _, n := range s.engines {
		if !slices.ContainsFunc(engines, func(h engineHost) bool { return h.Name == n }) {
			return fmt.Errorf("--swarm %s: no engine of that name", n)
		}
	}
	return nil
}

// swarmKey is the engine name of an engine's services in identities
// (swarm/web), depends_on (swarm:web), logs, the API and metrics: "swarm"
// when sleeper drives one Docker engine, else "<engine>-swarm". It is never
// the containers' engine name, so a service and a container of the same
// name never share an identity.
func swarmKey(engine string, engines int) string {
	if engines == 1 {
		return swarmprov.Provider
	}
	return engine + "-" + swarmprov.Provider
}

// swarmEngine is the Swarm services of one Docker engine, a source of its
// own beside the engine's containers.
type swarmEngine struct {
	engine string // the Docker engine's name (--docker-host)
	key    string // Container.Engine of its services
	mode   swarmMode
	sw     *swarmprov.Swarm
	health *watcher.EngineHealth
	self   bool // sleeper may share networks with it (the first, local engine)
}

// swarmEngines are the engines whose services may be managed.
type swarmEngines []*swarmEngine

// newSwarmEngines builds a services client for every engine --swarm does not
// turn off. It dials nothing: whether auto engines are managers is asked
// once each answers (run).
func newSwarmEngines(cfg config, log *slog.Logger) (swarmEngines, error) {
	var out swarmEngines
	for i, h := range cfg.Engines {
		mode := cfg.Swarm.modeFor(h.Name)
		if mode == swarmOff {
			continue
		}
		key := swarmKey(h.Name, len(cfg.Engines))
		if slices.ContainsFunc(cfg.Engines, func(o engineHost) bool { return o.Name == key }) {
			out.close()
			return nil, fmt.Errorf("--docker-host %s: the name is that of engine %s's swarm services: rename the engine or set --swarm", key, h.Name)
		}
		published := "127.0.0.1"
		if h.Address.IsValid() {
			published = h.Address.String()
		}
		sw, err := swarmprov.New(swarmprov.Config{Host: h.Host, Prefix: cfg.LabelPrefix,
			PublishedHost: published, Log: log.With("engine", key)})
		if err != nil {
			out.close()
			return nil, fmt.Errorf("engine %s: %w", h.Name, err)
		}
		out = append(out, &swarmEngine{engine: h.Name, key: key, mode: mode, sw: sw,
			self:   i == 0 && h.Address == (netip.Addr{}),
			health: watcher.NewEngineHealth(watcher.EngineHealthConfig{Engine: "swarm services of engine " + h.Name})})
	}
	return out, nil
}

func (ss swarmEngines) close() {
	for _, s := range ss {
		_ = s.sw.Close()
	}
}

// addTo adds the services engines to the registry's named engines (a nil
// map, the single Docker engine being the default one, is made). Their
// own networks are learnt when they run (runners).
func (ss swarmEngines) addTo(m map[string]watcher.Engine) map[string]watcher.Engine {
	if len(ss) > 0 && m == nil {
		m = map[string]watcher.Engine{}
	}
	for _, s := range ss {
		m[s.key] = watcher.Engine{Runtime: s.sw, Finder: s.sw, Provider: swarmprov.Provider, Health: s.health}
	}
	return m
}

// runners returns, per services engine, what runs it until ctx ends: the
// decision (auto), then its Reconciler. Two engines managing one swarm
// would scale the same services twice: in auto mode only the first to
// answer for a cluster manages it.
//
// synced has one channel per services engine, closed once its first list is
// reconciled, or at once when auto decides not to manage it: the proxy's
// wait for unknown hosts covers services too.
func (ss swarmEngines) runners(reg *watcher.Registry, cfg config, log *slog.Logger, rec *metrics.Recorder, engines dockerEngines) (run []func(context.Context) error, synced []<-chan struct{}) {
	claims := &clusterClaims{by: map[string]string{}}
	for _, s := range ss {
		rc := watcher.NewReconciler(watcher.ReconcilerConfig{
			Source: s.sw, Registry: reg, Log: log, Prefix: cfg.LabelPrefix,
			OnReconnect: rec.Reconnect, Engine: swarmprov.Provider + " " + s.key,
			Health: s.health, EngineName: s.key,
		})
		log := log.With("engine", s.engine, "services_engine", s.key)
		declined := make(chan struct{})
		synced = append(synced, firstOf(rc.Synced(), declined))
		run = append(run, func(ctx context.Context) error {
			// Declined, or ended: either way nothing will list these
			// services any more, and firstOf's goroutine must end.
			defer close(declined)
			if s.mode == swarmAuto && !s.decide(ctx, claims, log) {
				return nil
			}
			log.Info("managing swarm services", "mode", map[swarmMode]string{swarmAuto: "auto", swarmOn: "on"}[s.mode])
			if s.self {
				// A service's VIP on an overlay network sleeper is attached
				// to: the networks sleeper's own engine reports for it.
				s.learnSelf(ctx, reg, engines, log)
			}
			return rc.Run(ctx)
		})
	}
	return run, synced
}

// firstOf returns a channel closed when a or b is closed.
func firstOf(a, b <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		select {
		case <-a:
		case <-b:
		}
	}()
	return out
}

// decide waits for the engine to answer (capped backoff) and reports
// whether its services are to be managed: it is an active manager of a
// swarm no other engine claimed. A later swarm init or leave is not
// followed: restart sleeper (or set --swarm).
func (s *swarmEngine) decide(ctx context.Context, claims *clusterClaims, log *slog.Logger) bool {
	delay := 100 * time.Millisecond
	for {
		m, err := s.sw.Membership(ctx)
		if err == nil {
			switch {
			case !m.Manager:
				log.Info("engine is not a swarm manager: its services are not managed (--swarm=true forces it)")
				return false
			case !claims.claim(m.ClusterID, s.key):
				log.Info("swarm already managed through another engine", "cluster", m.ClusterID, "by", claims.owner(m.ClusterID))
				return false
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if cerrdefs.IsPermissionDenied(err) || cerrdefs.IsUnauthorized(err) {
			// A socket proxy refusing /info answers for good, not for now.
			// The deploy files' least-privilege proxy does: that is a
			// choice, not a fault, so it is not a warning.
			log.Info("cannot ask the engine whether it is a swarm manager: its services are not managed (allow INFO, SERVICES, TASKS and NETWORKS in the socket proxy, or set --swarm)", "error", err)
			return false
		}
		log.Debug("engine not answering yet; swarm detection retrying", "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// clusterClaims records which services engine manages each swarm.
type clusterClaims struct {
	mu sync.Mutex
	by map[string]string // cluster ID → services engine
}

// claim gives the cluster to key unless another has it.
func (c *clusterClaims) claim(cluster, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.by[cluster]; ok && o != key {
		return false
	}
	c.by[cluster] = key
	return true
}

func (c *clusterClaims) owner(cluster string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[cluster]
}

// learnSelf records, for the services engine, the networks of sleeper's own
// container as its Docker engine sees them; none when sleeper runs on the
// host or the engine cannot say (the services are then dialled on their
// published ports).
func (s *swarmEngine) learnSelf(ctx context.Context, reg *watcher.Registry, engines dockerEngines, log *slog.Logger) {
	for _, e := range engines {
		if e.host.Name != s.engine {
			continue
		}
		nets, err := e.dk.SelfNetworks(ctx)
		if err != nil {
			log.Warn("own networks unknown: services are dialled on their published ports", "error", err)
			return
		}
		reg.SetSelfNetworks(s.key, nets)
	}
}
