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

	"golang.org/x/sync/errgroup"

	"sleeper/pkg/admin"
	"sleeper/pkg/labels"
	"sleeper/pkg/metrics"
	"sleeper/pkg/proxy"
	"sleeper/pkg/stream"
	"sleeper/pkg/watcher"
	"sleeper/pkg/watcher/docker"
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

// serve runs sleeper until ctx ends.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting sleeper", "version", versionString(), "addr", cfg.Addr, "admin_addr", cfg.AdminAddr)
	dk, err := docker.New(cfg.DockerHost, cfg.LabelPrefix)
	if err != nil {
		return err
	}
	defer dk.Close()
	// Which networks sleeper shares with the apps decides how it dials them,
	// so it waits for the engine (a socket proxy may start after it) rather
	// than guess "not in a container".
	self, err := awaitEngine(ctx, dk, log)
	if err != nil {
		return err
	}

	// One recorder for the whole process: the registry, its watchers, the
	// proxy and the reconciler report to it; the admin listener serves it.
	rec := metrics.New(metrics.Config{Version: versionString()})
	pve, err := newProxmox(cfg, log)
	if err != nil {
		return err
	}
	reg := watcher.NewRegistry(watcher.RegistryConfig{
		Runtime:  dk,
		Log:      log,
		Recorder: rec,
		Labels: labels.Options{
			Prefix:             cfg.LabelPrefix,
			Domain:             cfg.Domain,
			DefaultIdleTimeout: cfg.DefaultIdleTimeout,
		},
		SelfNetworks: self,
		Finder:       dk,
		Proxmox:      pve.runtimes(),
	})
	// Closing the registry cancels wakes but leaves every container as it is.
	defer reg.Close()
	rec.Watch(reg)
	rc := watcher.NewReconciler(watcher.ReconcilerConfig{
		Source:      dk,
		Registry:    reg,
		Log:         log,
		Prefix:      cfg.LabelPrefix,
		OnReconnect: rec.Reconnect,
	})
	srv := proxy.NewServer(proxy.ServerConfig{
		Addr:     cfg.Addr,
		Handler:  proxy.NewHandler(proxy.Config{Routes: reg, MaxHeld: cfg.MaxHeld, Log: log, Recorder: rec}),
		Routes:   reg,
		Problems: reg,
		Log:      log,
	})
	if _, err := srv.Listen(); err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.AdminAddr, err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rc.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	streams := stream.NewServer(stream.Config{Routes: reg, Problems: reg, Log: log, SelfNetworks: self, MaxHeld: cfg.MaxHeld})
	g.Go(func() error { return streams.Run(gctx) })
	if pve != nil {
		pve.onChange(func(node string, vmid int) {
			for _, n := range reg.GuestNames(node, vmid) {
				rc.Enqueue(n)
			}
		})
		g.Go(func() error { return pve.poller.Run(gctx) })
	}
	adminHandler := admin.NewHandler(admin.Config{
		Synced:   rc.Synced(),
		Registry: reg,
		Metrics:  rec.Handler(log),
		Wakes:    rec,
		Token:    cfg.AdminToken,
		Version:  versionString(),
		Log:      log,
	})
	if cfg.AdminToken == "" {
		log.Info("admin API is read-only: set --admin-token to enable wake and sleep")
	}
	log.Info("admin listening", "addr", adminLn.Addr().String())
	g.Go(func() error { return serveAdmin(gctx, adminLn, adminHandler) })
	return g.Wait()
}

// awaitEngine pings the engine until it answers, with capped backoff, and
// returns sleeper's own networks.
func awaitEngine(ctx context.Context, dk *docker.Docker, log *slog.Logger) ([]string, error) {
	delay := 100 * time.Millisecond
	for {
		err := dk.Ping(ctx)
		var self []string
		if err == nil {
			self, err = dk.SelfNetworks(ctx)
		}
		if err == nil {
			log.Info("docker engine answers", "api_version", dk.APIVersion(), "own_networks", self)
			return self, nil
		}
		log.Warn("docker engine not answering yet; retrying", "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil, nil // shutting down before the engine answered is not an error
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
