package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// exitCrash is the code EXIT_AFTER exits with: non-zero and distinct from Go's 2
	// (panic or unhandled signal), so a test can tell the simulated crash apart.
	exitCrash = 3
	// shutdownGrace bounds waiting for in-flight HTTP requests on SIGTERM; it stays
	// under docker stop's default 10 s so the app exits 0 rather than being killed.
	shutdownGrace = 5 * time.Second
)

// listeners are opened together before anything is served, so the first HTTP answer
// also means the echo ports are ready.
type listeners struct {
	http net.Listener
	tcp  net.Listener
	udp  net.PacketConn
}

func listen(cfg config, logger *slog.Logger) (*listeners, error) {
	var ls listeners
	var err error
	if ls.http, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen http %s: %w", cfg.HTTPAddr, err)
	}
	logger.Info("listening", "proto", "http", "addr", ls.http.Addr().String())
	if ls.tcp, err = net.Listen("tcp", cfg.TCPEchoAddr); err != nil {
		ls.http.Close()
		return nil, fmt.Errorf("listen tcp echo %s: %w", cfg.TCPEchoAddr, err)
	}
	logger.Info("listening", "proto", "tcp-echo", "addr", ls.tcp.Addr().String())
	if ls.udp, err = net.ListenPacket("udp", cfg.UDPEchoAddr); err != nil {
		ls.http.Close()
		ls.tcp.Close()
		return nil, fmt.Errorf("listen udp echo %s: %w", cfg.UDPEchoAddr, err)
	}
	logger.Info("listening", "proto", "udp-echo", "addr", ls.udp.LocalAddr().String())
	return &ls, nil
}

// run is the app's life: optional start delay, listeners, serve until a signal
// (exit 0), EXIT_AFTER (exit 3) or a listener failure (exit 1). It returns the exit code.
func run(ctx context.Context, cfg config, logger *slog.Logger) int {
	if cfg.StartDelay > 0 {
		logger.Info("delaying start", "start_delay", cfg.StartDelay)
		select {
		case <-ctx.Done():
			// docker stop during the delay is still a clean stop.
			logger.Info("signal during start delay, exiting")
			return 0
		case <-time.After(cfg.StartDelay):
		}
	}
	ls, err := listen(cfg, logger)
	if err != nil {
		logger.Error("cannot listen", "err", err)
		return 1
	}
	return serve(ctx, cfg, ls, logger)
}

func serve(ctx context.Context, cfg config, ls *listeners, logger *slog.Logger) int {
	srv := &http.Server{
		Handler:           gate(newHandler(cfg.Name, cfg.UnhealthyFile), cfg, time.Now()),
		ReadHeaderTimeout: 10 * time.Second,
	}
	echo := newTCPEcho(ls.tcp)

	// Buffered for all three servers, so none blocks on reporting after we stop reading.
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ls.http); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http: %w", err)
		}
	})
	wg.Go(func() {
		if err := echo.serve(); err != nil {
			errs <- fmt.Errorf("tcp echo: %w", err)
		}
	})
	wg.Go(func() {
		if err := serveUDPEcho(ls.udp); err != nil {
			errs <- fmt.Errorf("udp echo: %w", err)
		}
	})

	var crash <-chan time.Time
	if cfg.ExitAfter > 0 {
		t := time.NewTimer(cfg.ExitAfter)
		defer t.Stop()
		crash = t.C
	}

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("signal received, shutting down")
	case <-crash:
		// A crash does not clean up: exit at once, like a real one would.
		logger.Error("EXIT_AFTER elapsed, exiting", "exit_after", cfg.ExitAfter, "code", exitCrash)
		return exitCrash
	case err := <-errs:
		logger.Error("server failed", "err", err)
		code = 1
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown incomplete, closing", "err", err)
		srv.Close()
	}
	echo.close()
	ls.udp.Close()
	wg.Wait()
	logger.Info("stopped", "code", code)
	return code
}
