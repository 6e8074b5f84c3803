package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"
)

// probeTimeout bounds one probe so a wedged app reads as unhealthy instead of hanging;
// docker also kills the probe at the HEALTHCHECK --timeout, whichever comes first.
const probeTimeout = 2 * time.Second

// probe asks the running app's /healthz and returns the exit code docker's HEALTHCHECK
// expects: 0 healthy, 1 unhealthy.
func probe(httpAddr string, timeout time.Duration) int {
	url, err := healthURL(httpAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return probeURL(url, timeout)
}

// probeURL fetches url and returns 0 on a 2xx/3xx answer, else 1.
func probeURL(url string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	fmt.Println("healthcheck: ok")
	return 0
}

// healthURL turns a listen address into a URL to dial: a wildcard or empty host
// (":8080", "0.0.0.0:8080") is reached through loopback; a specific host is kept.
func healthURL(httpAddr string) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("HTTP_ADDR %q: %w", httpAddr, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
