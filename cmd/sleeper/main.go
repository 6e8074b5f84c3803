// Command sleeper puts idle Docker containers to sleep and wakes them on the
// next request. It only wires the packages together: flags, signals,
// constructors and the exit code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
	// The image is FROM scratch, without zoneinfo: --timezone and TZ need the
	// embedded database (about 450 KB).
	_ "time/tzdata"

	"golang.org/x/sync/errgroup"

	"sleeper/pkg/admin"
	"sleeper/pkg/docker"
	"sleeper/pkg/labels"
	"sleeper/pkg/metrics"
	"sleeper/pkg/proxmox"
	"sleeper/pkg/proxy"
	"sleeper/pkg/stream"
	"sleeper/pkg/watcher"
	"sleeper/pkg/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			_, _ = fmt.Fprintln(stdout, "sleeper", versionString())
			return 0
		case "healthcheck":
			return healthcheck(ctx, args[1:], getenv, stderr)
		case "serve":
			args = args[1:]
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err == nil {
		err = cfg.loadSecrets()
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0 // -h: the flag set has printed the usage
	case err != nil:
		_, _ = fmt.Fprintln(stderr, "sleeper:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("sleeper stopped", "error", err)
		return 1
	}
	log.Info("sleeper stopped")
	return 0
}

// serve runs sleeper until ctx ends. The admin listener opens first, so
// /healthz and /metrics answer (503 and sleeper_docker_up 0) exactly while
// no engine does; the front doors open as soon as the configuration is
// read, and each engine is awaited, listed and reconnected on its own.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting sleeper", "version", versionString(), "addr", cfg.Addr, "admin_addr", cfg.AdminAddr)
	// One recorder for the whole process: the registry, its watchers, the
	// proxy and the reconciler report to it; the admin listener serves it.
	rec := metrics.New(metrics.Config{Version: versionString()})
	// Wakes, sleeps and label errors also go to the webhooks, when set:
	// the watchers report to a recorder that fans out to both.
	var events watcher.Recorder = rec
	var hooks *webhook.Notifier
	if len(cfg.WebhookURLs) > 0 {
		hooks = webhook.New(webhook.Config{URLs: cfg.WebhookURLs, Secret: cfg.WebhookSecret, Log: log})
		events = webhook.NewRecorder(rec, hooks)
	}
	engines, err := newEngines(cfg, rec)
	if err != nil {
		return err
	}
	defer engines.close()
	swarms, err := newSwarmEngines(cfg, log)
	if err != nil {
		return err
	}
	defer swarms.close()
	adminHandler := admin.NewHandler(admin.Config{
		Health:  engines.health(),
		Metrics: rec.Handler(log),
		Wakes:   rec,
		Token:   cfg.AdminToken,
		Version: versionString(),
		Log:     log,
	})
	if cfg.AdminToken == "" {
		log.Info("admin API is read-only: set --admin-token to enable wake and sleep")
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.AdminAddr, err)
	}
	log.Info("admin listening", "addr", adminLn.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveAdmin(gctx, adminLn, adminHandler) })
	if hooks != nil {
		g.Go(func() error { return hooks.Run(gctx) })
	}
	g.Go(func() error {
		return serveEngine(gctx, cfg, log, engineDeps{engines: engines, swarms: swarms, rec: rec, events: events, hooks: hooks, admin: adminHandler})
	})
	return g.Wait()
}

// engineDeps is what serve builds before the front doors.
type engineDeps struct {
	engines dockerEngines
	swarms  swarmEngines // the engines whose Swarm services may be managed
	rec     *metrics.Recorder
	events  watcher.Recorder  // rec, or rec and the webhooks
	hooks   *webhook.Notifier // nil without --webhook-url
	admin   *admin.Handler
}

// serveEngine builds the registry and one reconciler per engine, then runs
// the front doors until ctx ends. It waits for no engine: one that is down
// at start holds up only its own containers (dockerEngine.run).
func serveEngine(ctx context.Context, cfg config, log *slog.Logger, d engineDeps) error {
	pve, err := newProxmox(cfg, log)
	if err != nil {
		return err
	}
	first := d.engines[0]
	reg := watcher.NewRegistry(watcher.RegistryConfig{
		Runtime:  first.dk,
		Log:      log,
		Recorder: d.events,
		Labels: labels.Options{
			Prefix:             cfg.LabelPrefix,
			Domain:             cfg.Domain,
			HostsFrom:          cfg.HostsFrom,
			DefaultIdleTimeout: cfg.DefaultIdleTimeout,
		},
		Finder:   first.dk,
		Provider: docker.Provider,
		Targets:  proxmox.Targets{Guests: pve.guests(), Prefix: cfg.LabelPrefix},
		Location: cfg.Timezone,
		Engines:  d.swarms.addTo(d.engines.registryEngines()),
	})
	// Closing the registry cancels wakes but leaves every container as it is.
	defer reg.Close()
	d.rec.Watch(reg)
	d.admin.Attach(reg)
	if d.hooks != nil {
		d.hooks.Attach(reg)
	}
	var rcs []*watcher.Reconciler
	for _, e := range d.engines {
		rcs = append(rcs, watcher.NewReconciler(watcher.ReconcilerConfig{
			Source:      e.dk,
			Registry:    reg,
			Log:         log,
			Prefix:      cfg.LabelPrefix,
			OnReconnect: d.rec.Reconnect,
			Engine:      e.logName(),
			Health:      e.health,
			EngineName:  e.key,
		}))
	}
	sources, synced := d.swarms.runners(reg, cfg, log, d.rec, d.engines)
	for _, rc := range rcs {
		synced = append(synced, rc.Synced())
	}
	return runFrontDoors(ctx, cfg, log, frontDeps{reg: reg, rcs: rcs, engines: d.engines, rec: d.rec, pve: pve,
		sources: sources, synced: synced})
}

// frontDeps is what the front doors and the discovery loop share.
type frontDeps struct {
	reg     *watcher.Registry
	rcs     []*watcher.Reconciler // one per engine, in the order of engines
	engines dockerEngines
	rec     *metrics.Recorder
	pve     *pveWiring
	// sources are the other discovery loops (Swarm services), each run
	// until ctx ends.
	sources []func(context.Context) error
	// synced has a channel per source, engines and services alike, closed
	// once its first list is reconciled.
	synced []<-chan struct{}
}

// runFrontDoors binds the proxy and runs it, the stream proxy, discovery and
// the Proxmox poller until ctx ends.
func runFrontDoors(ctx context.Context, cfg config, log *slog.Logger, d frontDeps) error {
	discovered, waitDiscovered := allSynced(d.synced)
	srv := proxy.NewServer(proxy.ServerConfig{
		Addr: cfg.Addr,
		Handler: proxy.NewHandler(proxy.Config{
			Routes: d.reg, MaxHeld: cfg.MaxHeld, Log: log, Recorder: d.rec, Discovered: discovered,
			TrustedProxies: cfg.TrustedProxies, IgnoreAgents: cfg.IgnoreAgents,
		}),
		Routes:   d.reg,
		Problems: d.reg,
		Log:      log,
	})
	if _, err := srv.Listen(); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, e := range d.engines {
		g.Go(func() error { return e.run(gctx, d.reg, d.rcs[i], log, len(d.engines) == 1) })
	}
	for _, run := range d.sources {
		g.Go(func() error { return run(gctx) })
	}
	g.Go(func() error { return waitDiscovered(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	streams := stream.NewServer(stream.Config{Routes: d.reg, Problems: d.reg, Log: log, MaxHeld: cfg.MaxHeld})
	g.Go(func() error { return streams.Run(gctx) })
	if d.pve != nil {
		d.pve.bind(d.reg, func(key string) {
			for _, rc := range d.rcs {
				rc.Enqueue(key) // only the key's own engine takes it
			}
		})
		g.Go(func() error { return d.pve.poller.Run(gctx) })
	}
	return g.Wait()
}

// awaitEngine pings the engine until it answers, with capped backoff, and
// returns sleeper's own networks on it: none when sleeper runs on the host
// or in a container of another engine. It reports each attempt to health,
// and returns ctx's error if ctx ends first.
func awaitEngine(ctx context.Context, dk *docker.Docker, health *watcher.EngineHealth, log *slog.Logger) ([]string, error) {
	delay := 100 * time.Millisecond
	for {
		err := dk.Ping(ctx)
		var self []string
		if err == nil {
			self, err = dk.SelfNetworks(ctx)
		}
		if err == nil {
			health.EngineUp()
			log.Info("docker engine answers", "api_version", dk.APIVersion(), "own_networks", self)
			return self, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for the docker engine: %w", context.Cause(ctx))
		}
		if errors.Is(err, docker.ErrAPIVersionRefused) {
			return nil, err // a setting to change, not an outage to wait out
		}
		health.EngineDown(err)
		log.Warn("docker engine not answering yet; retrying", "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the docker engine: %w", context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func serveAdmin(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// healthcheck exits 0 when a running sleeper answers /healthz on its admin
// address: a HEALTHCHECK for FROM scratch images, which have no curl.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "sleeper healthcheck:", err)
		return 2
	}
	host, port, err := net.SplitHostPort(cfg.AdminAddr)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "sleeper healthcheck:", err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "sleeper healthcheck:", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = fmt.Fprintln(stderr, "sleeper healthcheck: status", resp.Status)
		return 1
	}
	return 0
}
