package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sleeper/internal/syncbuf"
	"slices"
	"strings"
	"testing"
	"time"

	"sleeper/internal/await"
)

// env is a getenv over a fixed map.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	tokenFile := writeFile(t, "  from-file\n")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(c config) bool
	}{
		{"defaults", nil, nil, func(c config) bool {
			return c.Addr == ":8080" && c.AdminAddr == ":9090" && c.LabelPrefix == "sleeper" &&
				c.DefaultIdleTimeout == 15*time.Minute && c.MaxHeld == 1000 && c.AdminToken == ""
		}},
		{"env over default", nil, map[string]string{
			"SLEEPER_ADMIN_ADDR": "127.0.0.1:9999", "SLEEPER_DEFAULT_IDLE_TIMEOUT": "90s", "SLEEPER_MAX_HELD": "5",
		}, func(c config) bool {
			return c.AdminAddr == "127.0.0.1:9999" && c.DefaultIdleTimeout == 90*time.Second && c.MaxHeld == 5
		}},
		{"flag over env", []string{"--max-held", "7", "--admin-token=flag"}, map[string]string{
			"SLEEPER_MAX_HELD": "5", "SLEEPER_ADMIN_TOKEN": "env",
		}, func(c config) bool { return c.MaxHeld == 7 && c.AdminToken == "flag" }},
		{"token from env", nil, map[string]string{"SLEEPER_ADMIN_TOKEN": "env"},
			func(c config) bool { return c.AdminToken == "env" }},
		{"token from file, trimmed", []string{"--admin-token-file", tokenFile}, nil,
			func(c config) bool { return c.AdminToken == "from-file" }},
		{"token file from env", nil, map[string]string{"SLEEPER_ADMIN_TOKEN_FILE": tokenFile},
			func(c config) bool { return c.AdminToken == "from-file" }},
		{"trusted proxies from env", nil, map[string]string{"SLEEPER_TRUSTED_PROXIES": "10.0.0.0/8, 172.18.0.2"},
			func(c config) bool { return fmt.Sprint(c.TrustedProxies) == "[10.0.0.0/8 172.18.0.2/32]" }},
		{"trusted proxies flag over env", []string{"--trusted-proxies=192.168.0.0/16"},
			map[string]string{"SLEEPER_TRUSTED_PROXIES": "10.0.0.0/8"},
			func(c config) bool { return fmt.Sprint(c.TrustedProxies) == "[192.168.0.0/16]" }},
		{"no trusted proxies by default", nil, nil, func(c config) bool { return len(c.TrustedProxies) == 0 }},
		{"hosts from traefik and caddy by default", nil, nil,
			func(c config) bool { return fmt.Sprint(c.HostsFrom) == "[traefik caddy]" }},
		{"hosts from off by an empty flag", []string{"--hosts-from="}, map[string]string{"SLEEPER_HOSTS_FROM": "caddy"},
			func(c config) bool { return len(c.HostsFrom) == 0 }},
		{"hosts from env", nil, map[string]string{"SLEEPER_HOSTS_FROM": "caddy"},
			func(c config) bool { return fmt.Sprint(c.HostsFrom) == "[caddy]" }},
		{"hosts from off by env none", nil, map[string]string{"SLEEPER_HOSTS_FROM": "none"},
			func(c config) bool { return len(c.HostsFrom) == 0 }},
		{"ignore agents: uptime monitors by default", nil, nil, func(c config) bool {
			return slices.Contains(c.IgnoreAgents, "uptime-kuma") && slices.Contains(c.IgnoreAgents, "uptimerobot")
		}},
		{"ignore agents off by an empty flag", []string{"--ignore-agents="}, nil,
			func(c config) bool { return len(c.IgnoreAgents) == 0 }},
		{"ignore agents off from env", nil, map[string]string{"SLEEPER_IGNORE_AGENTS": "none"},
			func(c config) bool { return len(c.IgnoreAgents) == 0 }},
		{"ignore agents from env", nil, map[string]string{"SLEEPER_IGNORE_AGENTS": "MyBot, other"},
			func(c config) bool { return fmt.Sprint(c.IgnoreAgents) == "[mybot other]" }},
		{"webhook urls repeatable", []string{"--webhook-url=http://127.0.0.1:1/a", "--webhook-url", "https://h.example/b"}, nil,
			func(c config) bool { return fmt.Sprint(c.WebhookURLs) == "[http://127.0.0.1:1/a https://h.example/b]" }},
		{"webhook urls flag over env", []string{"--webhook-url=http://127.0.0.1:1/a"},
			map[string]string{"SLEEPER_WEBHOOK_URL": "http://e/1,http://e/2", "SLEEPER_WEBHOOK_SECRET": "k"},
			func(c config) bool {
				return fmt.Sprint(c.WebhookURLs) == "[http://127.0.0.1:1/a]" && c.WebhookSecret == "k"
			}},
		{"webhook urls from env", nil, map[string]string{"SLEEPER_WEBHOOK_URL": "http://e/1, http://e/2"},
			func(c config) bool { return fmt.Sprint(c.WebhookURLs) == "[http://e/1 http://e/2]" }},
		{"timezone from env", nil, map[string]string{"SLEEPER_TIMEZONE": "Europe/Paris"},
			func(c config) bool { return c.Timezone.String() == "Europe/Paris" }},
		{"timezone defaults to the process's", nil, nil, func(c config) bool { return c.Timezone == time.Local }},
		{"DOCKER_HOST fallback", nil, map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"},
			func(c config) bool { return len(c.Engines) == 1 && c.Engines[0].Host == "tcp://127.0.0.1:2375" }},
		{"--docker-host over DOCKER_HOST", []string{"--docker-host", "unix:///x.sock"},
			map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"},
			func(c config) bool { return len(c.Engines) == 1 && c.Engines[0].Host == "unix:///x.sock" }},
		{"several engines, named and not", []string{"--docker-host", "nas=tcp://10.0.0.5:2375", "--docker-host", "unix:///x.sock"}, nil,
			func(c config) bool {
				return fmt.Sprint(c.Engines) == "[{nas tcp://10.0.0.5:2375 10.0.0.5} {engine2 unix:///x.sock invalid IP}]"
			}},
		// The deploy/ compose files reach the engine through a socket
		// proxy by name: that is sleeper's own engine, not a remote one.
		{"socket proxy by host name", nil, map[string]string{"SLEEPER_DOCKER_HOST": "tcp://socket-proxy:2375"},
			func(c config) bool {
				return fmt.Sprint(c.Engines) == "[{local tcp://socket-proxy:2375 invalid IP}]"
			}},
		{"several engines from env, flag replaces", []string{"--docker-host", "b=unix:///b.sock"},
			map[string]string{"SLEEPER_DOCKER_HOST": "unix:///a.sock,c=unix:///c.sock"},
			func(c config) bool { return fmt.Sprint(c.Engines) == "[{b unix:///b.sock invalid IP}]" }},
		{"several engines from env", nil, map[string]string{"SLEEPER_DOCKER_HOST": "unix:///a.sock, c=unix:///c.sock"},
			func(c config) bool {
				return fmt.Sprint(c.Engines) == "[{local unix:///a.sock invalid IP} {c unix:///c.sock invalid IP}]"
			}},
		{"engine address by flag", []string{"--docker-host", "nas=tcp://nas-proxy:2375", "--docker-host-address", "nas=192.0.2.7"}, nil,
			func(c config) bool { return c.Engines[0].Address.String() == "192.0.2.7" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if err == nil {
				err = c.loadSecrets()
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestBadValuesExit2(t *testing.T) {
	t.Parallel()
	empty := writeFile(t, " \n")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		wantIn string
	}{
		{"max-held zero", []string{"--max-held=0"}, nil, "--max-held=0: must be at least 1"},
		{"negative idle", []string{"--default-idle-timeout=-1s"}, nil, "--default-idle-timeout=-1s"},
		{"log format", []string{"--log-format=xml"}, nil, `--log-format="xml"`},
		{"log level", []string{"--log-level=loud"}, nil, `--log-level="loud"`},
		{"label prefix", []string{"--label-prefix=a b"}, nil, "--label-prefix"},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined: -nope"},
		{"not a duration", []string{"--default-idle-timeout=soon"}, nil, "default-idle-timeout"},
		{"bad env", nil, map[string]string{"SLEEPER_MAX_HELD": "many"}, `SLEEPER_MAX_HELD="many"`},
		{"stray argument", []string{"extra"}, nil, `unexpected argument "extra"`},
		{"token twice", []string{"--admin-token=a", "--admin-token-file=/x"}, nil, "set only one"},
		{"token file missing", []string{"--admin-token-file=/nonexistent/token"}, nil, "--admin-token-file"},
		{"bad trusted proxy", []string{"--trusted-proxies=10.0.0.0/8,10.0.0.0/40"}, nil, `"10.0.0.0/40" is neither a CIDR`},
		{"bad timezone", []string{"--timezone=Mars/Olympus"}, nil, `for flag -timezone: not an IANA time zone name`},
		{"bad hosts source", []string{"--hosts-from=traefik,nginx"}, nil, `"nginx": unknown host source`},
		{"bad trusted proxy env", nil, map[string]string{"SLEEPER_TRUSTED_PROXIES": "traefik"}, `SLEEPER_TRUSTED_PROXIES="traefik": "traefik" is neither`},
		{"token file empty", []string{"--admin-token-file", empty}, nil, "the file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, env(tt.env), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2 (stderr: %s)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantIn) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantIn)
			}
		})
	}
}

func TestHelpExits0(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, env(nil), io.Discard, &stderr); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if !strings.Contains(stderr.String(), "-admin-token-file") {
		t.Errorf("usage lacks --admin-token-file:\n%s", stderr.String())
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if code := run(t.Context(), []string{"version"}, env(nil), &stdout, io.Discard); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "sleeper ") || !strings.HasSuffix(stdout.String(), "\n") {
		t.Errorf("version printed %q", stdout.String())
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func healthcheckCode(t *testing.T, getenv func(string) string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	code := run(t.Context(), append([]string{"healthcheck"}, args...), getenv, io.Discard, &stderr)
	return code, stderr.String()
}

func TestHealthcheckFailures(t *testing.T) {
	t.Parallel()
	unhealthy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(unhealthy.Close)
	tests := []struct {
		name     string
		addr     string
		wantCode int
	}{
		{"nothing listens", freeAddr(t), 1},
		{"not 200", strings.TrimPrefix(unhealthy.URL, "http://"), 1},
		{"bad address", "no-port", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if code, stderr := healthcheckCode(t, env(nil), "--admin-addr", tt.addr); code != tt.wantCode {
				t.Fatalf("exit code %d (%s), want %d", code, stderr, tt.wantCode)
			}
		})
	}
}

// TestServe runs the whole program in-process against the local Docker
// engine, with a random label prefix so that it manages nothing, and checks
// the admin listener, healthcheck and shutdown on cancel.
func TestServe(t *testing.T) {
	adminAddr := freeAddr(t)
	token := rand.Text()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", adminAddr,
			"--label-prefix", "sleepertest" + randomHex(t)},
			env(map[string]string{"SLEEPER_ADMIN_TOKEN": token}), io.Discard, &stderr)
	}()

	// The admin listener opens before the engine answers; /healthz says 200
	// once the engine has answered and the first list is done.
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, msg := healthcheckCode(t, env(map[string]string{"SLEEPER_ADMIN_ADDR": adminAddr}))
		if code == 0 {
			break
		}
		select {
		case c := <-done:
			t.Fatalf("sleeper exited with %d before answering:\n%s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed: %s\n%s", msg, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	base := "http://" + adminAddr
	for path, want := range map[string]string{
		"/metrics":        "sleeper_build_info{",
		"/api/containers": "[]",
		"/":               "<title>sleeper</title>",
	} {
		if body := get(t, base+path); !strings.Contains(body, want) {
			t.Errorf("GET %s lacks %q:\n%s", path, want, body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/containers/nope/wake", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("authorized wake of an unknown container: %d, want 404 (token not wired?)", resp.StatusCode)
	}
	if strings.Contains(stderr.String(), token) {
		t.Error("the admin token appears in the log")
	}

	// SIGTERM: main cancels the context; run must return 0 (the watchdog
	// below only keeps a hang from lasting; speed is not asserted).
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after cancel, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return within 15s of cancel:\n%s", stderr.String())
	}
	if code, _ := healthcheckCode(t, env(nil), "--admin-addr", adminAddr); code != 1 {
		t.Errorf("healthcheck after shutdown exited %d, want 1", code)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startUnreachable runs sleeper against an engine address where nothing
// answers, with the proxy address given, and waits until it is retrying.
func startUnreachable(t *testing.T, ctx context.Context, addr, adminAddr string) (<-chan int, *syncbuf.Buffer) {
	t.Helper()
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--admin-addr", adminAddr,
			"--docker-host", "unix://" + filepath.Join(t.TempDir(), "no-engine.sock"),
			"--label-prefix", "sleepertest" + randomHex(t)}, env(nil), io.Discard, &stderr)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(stderr.String(), "docker engine not answering yet") {
		select {
		case c := <-done:
			t.Fatalf("sleeper exited with %d while the engine was away:\n%s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleeper never retried the engine:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return done, &stderr
}

// TestFrontDoorsOpenWhileEngineAway: the proxy is bound as soon as the
// configuration is read, without waiting for an engine (each engine is
// awaited on its own), and a shutdown while the engine is still away ends
// sleeper with 0.
func TestFrontDoorsOpenWhileEngineAway(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done, stderr := startUnreachable(t, ctx, addr, freeAddr(t))
	await.Eventually(t, 10*time.Second, "the proxy to accept connections while the engine is away", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after a shutdown while waiting for the engine, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return after cancel:\n%s", stderr.String())
	}
}

// TestHealthWhileEngineDown: with the engine away, the admin listener is up;
// /healthz answers 503 with the reason and sleeper_docker_up is 0.
func TestHealthWhileEngineDown(t *testing.T) {
	t.Parallel()
	adminAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done, stderr := startUnreachable(t, ctx, "127.0.0.1:0", adminAddr)
	resp, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz while the engine is away: %v\n%s", err, stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "waiting for the docker engine") {
		t.Errorf("/healthz: %d %q, want 503 waiting for the docker engine", resp.StatusCode, body)
	}
	if code, _ := healthcheckCode(t, env(nil), "--admin-addr", adminAddr); code != 1 {
		t.Errorf("sleeper healthcheck exited %d while the engine is away, want 1", code)
	}
	if m := get(t, "http://"+adminAddr+"/metrics"); !strings.Contains(m, "\nsleeper_docker_up{engine=\"\"} 0\n") {
		t.Errorf("/metrics lacks sleeper_docker_up 0")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}
