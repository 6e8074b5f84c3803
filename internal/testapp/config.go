package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the parsed environment. It is a value built once in main and passed down,
// so tests can build one without touching the process environment.
type config struct {
	Name          string
	HTTPAddr      string
	TCPEchoAddr   string
	UDPEchoAddr   string
	StartDelay    time.Duration
	ExitAtStart   *int // nil when unset: 0 is a meaningful exit code
	ExitAfter     time.Duration
	UnhealthyFile string
	HealthyAfter  time.Duration
	AllowedHosts  []string // empty: every Host is served
}

// configFromEnv reads the configuration through getenv (os.Getenv in main). Invalid
// values are errors rather than silently ignored, so a typo in a test's Env fails loudly.
func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{
		Name:          getenv("APP_NAME"),
		HTTPAddr:      orDefault(getenv("HTTP_ADDR"), ":8080"),
		TCPEchoAddr:   orDefault(getenv("TCP_ECHO_ADDR"), ":9000"),
		UDPEchoAddr:   orDefault(getenv("UDP_ECHO_ADDR"), ":9001"),
		UnhealthyFile: getenv("UNHEALTHY_FILE"),
	}
	if cfg.Name == "" {
		// In a container the hostname is the short container ID, which is unique.
		host, err := os.Hostname()
		if err != nil {
			return config{}, fmt.Errorf("APP_NAME unset and hostname unknown: %w", err)
		}
		cfg.Name = host
	}
	var err error
	if cfg.StartDelay, err = durationEnv(getenv, "START_DELAY"); err != nil {
		return config{}, err
	}
	if cfg.ExitAfter, err = durationEnv(getenv, "EXIT_AFTER"); err != nil {
		return config{}, err
	}
	if cfg.HealthyAfter, err = durationEnv(getenv, "HEALTHY_AFTER"); err != nil {
		return config{}, err
	}
	for h := range strings.SplitSeq(getenv("ALLOWED_HOSTS"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.AllowedHosts = append(cfg.AllowedHosts, strings.ToLower(h))
		}
	}
	if v := getenv("EXIT_AT_START"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 || code > 255 {
			return config{}, fmt.Errorf("EXIT_AT_START=%q: want an exit code 0-255", v)
		}
		cfg.ExitAtStart = &code
	}
	return cfg, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func durationEnv(getenv func(string) string, key string) (time.Duration, error) {
	v := getenv(key)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative Go duration like 1.5s", key, v)
	}
	return d, nil
}
