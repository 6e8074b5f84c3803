// Command testapp is the application that runs inside sleeper's test containers.
//
// It is built as a static binary (CGO_ENABLED=0) and copied into a FROM scratch image
// by package dockertest, because the test engine has no registry to pull images from.
// Everything it does is steered by environment variables, so one image serves every
// scenario a test needs: a normal app, a slow starter, a crasher, an unhealthy one.
//
// Environment:
//
//	APP_NAME       name returned in responses (default: the hostname, i.e. the container ID)
//	HTTP_ADDR      HTTP listen address (default ":8080")
//	TCP_ECHO_ADDR  TCP echo listen address (default ":9000")
//	UDP_ECHO_ADDR  UDP echo listen address (default ":9001")
//	START_DELAY    Go duration to wait before opening any listener (default 0)
//	EXIT_AT_START  if set, print to stderr and exit with this code before anything else
//	EXIT_AFTER     Go duration after the listeners are open; then exit with code 3
//	UNHEALTHY_FILE if this file exists, /healthz answers 503
//	HEALTHY_AFTER  Go duration after the listeners open during which /healthz answers 503
//	               (an app whose / answers at once but whose health test fails a while)
//	ALLOWED_HOSTS  comma list of host names; a request whose Host (without port) is not
//	               one of them gets 400, as Django's ALLOWED_HOSTS does
//
// The -healthcheck flag turns the binary into its own probe: scratch images have no
// shell or curl, so an exec-form HEALTHCHECK runs ["/app", "-healthcheck"], which
// probes /healthz on HTTP_ADDR, or ["/app", "-healthcheck", URL], which fetches URL
// (healthy on 2xx/3xx), like a curl or wget test would.
//
// SIGTERM and SIGINT shut everything down and exit 0: a Go PID 1 without a handler
// exits with code 2, which would make every `docker stop` look like a crash.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(realMain())
}

// realMain holds what main would, so deferred calls run before os.Exit.
func realMain() int {
	healthcheck := flag.Bool("healthcheck", false, "probe GET /healthz on HTTP_ADDR and exit 0 if it answers 200, else 1")
	flag.Parse()

	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		return 2
	}

	// The probe runs first: docker exec's it with the container's environment, so
	// EXIT_AT_START or START_DELAY meant for the app must not affect the probe.
	if *healthcheck {
		if flag.NArg() > 0 {
			return probeURL(flag.Arg(0), probeTimeout)
		}
		return probe(cfg.HTTPAddr, probeTimeout)
	}

	if cfg.ExitAtStart != nil {
		fmt.Fprintf(os.Stderr, "testapp: EXIT_AT_START=%d, exiting\n", *cfg.ExitAtStart)
		return *cfg.ExitAtStart
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("app", cfg.Name)
	return run(ctx, cfg, logger)
}
