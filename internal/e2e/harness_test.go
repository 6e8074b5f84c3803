// Package e2e runs sleeper's packages together against the real Docker
// engine: containers built from internal/testapp, a reconciler on the real
// event stream, and the proxy on a loopback port.
package e2e

import (
	"sleeper/internal/await"
	"sleeper/internal/syncbuf"

	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
	"sleeper/pkg/docker"
	"sleeper/pkg/labels"
	"sleeper/pkg/proxmox"
	"sleeper/pkg/proxmox/pvefake"
	"sleeper/pkg/proxy"
	"sleeper/pkg/watcher"
)

// stack is one sleeper wired as main wires it, with its own label prefix so
// that parallel tests never see each other's containers.
type stack struct {
	t      *testing.T
	cli    *client.Client
	prefix string
	base   string // http://127.0.0.1:port of the proxy
	reg    *watcher.Registry
	logs   *syncbuf.Buffer
	http   *http.Client
	stop   func()
}

type stackOptions struct {
	prefix  string // reuse a prefix (a restarted sleeper); "" for a fresh one
	maxHeld int
	domain  string
	// dockerHost points sleeper at another engine address (a SocketProxy).
	dockerHost string
	// pve, when set, configures Proxmox support against this fake PVE with
	// the given secret (the fake's own when empty).
	pve       *pvefake.Server
	pveSecret string
	// pveAddrWait is the Proxmox runtime's AddressWait (0: its default).
	pveAddrWait time.Duration
	// readHeaderTimeout shortens the slowloris limit (the default is
	// sleeper's own 10 s).
	readHeaderTimeout time.Duration
	// hostsFrom and trustedProxies are --hosts-from and --trusted-proxies
	// (frontproxy_test.go).
	hostsFrom      []string
	trustedProxies []netip.Prefix
	// ignoreAgents is --ignore-agents; recorder, when set, receives what
	// the watchers do (a webhook recorder, or one served as /metrics);
	// nil records nothing.
	ignoreAgents []string
	recorder     watcher.Recorder
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func randomPrefix(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "sl" + hex.EncodeToString(b[:])
}

// startSleeper runs a sleeper until the test ends (or stop is called).
func startSleeper(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	cli := dockertest.Client(t)
	if opt.prefix == "" {
		opt.prefix = randomPrefix(t)
	}
	if opt.maxHeld == 0 {
		opt.maxHeld = 1000
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dk, err := docker.New(opt.dockerHost, opt.prefix)
	if err != nil {
		t.Fatal(err)
	}
	guests, poller := startPVE(t, opt, log)
	reg := watcher.NewRegistry(watcher.RegistryConfig{
		Runtime: dk, Finder: dk, Log: log, Provider: docker.Provider, Recorder: opt.recorder,
		Targets: proxmox.Targets{Guests: guests, Prefix: opt.prefix},
		Labels:  labels.Options{Prefix: opt.prefix, Domain: opt.domain, HostsFrom: opt.hostsFrom, DefaultIdleTimeout: time.Hour},
	})
	rc := watcher.NewReconciler(watcher.ReconcilerConfig{Source: dk, Registry: reg, Log: log, Prefix: opt.prefix, Engine: docker.Provider})
	if poller != nil {
		poller.bind(reg, rc.Enqueue)
	}
	srv := proxy.NewServer(proxy.ServerConfig{
		Addr:    "127.0.0.1:0",
		Handler: proxy.NewHandler(proxy.Config{Routes: reg, MaxHeld: opt.maxHeld, Log: log, TrustedProxies: opt.trustedProxies, IgnoreAgents: opt.ignoreAgents}),
		Routes:  reg, Problems: reg, Log: log, ListenHost: "127.0.0.1", Grace: 2 * time.Second,
		ReadHeaderTimeout: opt.readHeaderTimeout,
	})
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = rc.Run(ctx) })
	wg.Go(func() { _ = srv.Run(ctx) })
	if poller != nil {
		wg.Go(func() { _ = poller.p.Run(ctx) })
	}
	var once sync.Once
	s := &stack{
		t: t, cli: cli, prefix: opt.prefix, base: "http://" + addr.String(), reg: reg, logs: logs,
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 300}},
	}
	s.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			reg.Close()
			_ = dk.Close()
		})
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sleeper logs:\n%s", logs.String())
		}
	})
	select {
	case <-rc.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("sleeper did not finish discovery")
	}
	return s
}

// labels returns the enable label plus the given ones, under the stack's prefix.
func (s *stack) labels(kv ...string) map[string]string {
	m := map[string]string{s.prefix + ".enable": "true"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[s.prefix+"."+kv[i]] = kv[i+1]
	}
	return m
}

// run creates an app container managed by this stack. Its port 8080 is
// published on loopback, which is how sleeper on the host reaches it.
func (s *stack) run(name string, start bool, env []string, kv ...string) string {
	s.t.Helper()
	return dockertest.Run(s.t, s.cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(s.t), Labels: s.labels(kv...),
		Env: env, Publish: []string{"8080/tcp"}, Start: start,
	})
}

func uniqueName(t *testing.T, base string) string {
	return base + "-" + randomPrefix(t)
}

// do sends a request through sleeper with the given Host.
func (s *stack) do(method, host, path string, body io.Reader) (*http.Response, string, error) {
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func (s *stack) get(host, path string) (*http.Response, string) {
	s.t.Helper()
	resp, body, err := s.do(http.MethodGet, host, path, nil)
	if err != nil {
		s.t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return resp, body
}

// watcher waits until the registry manages name and returns its watcher.
func (s *stack) watcher(name string) *watcher.Watcher {
	s.t.Helper()
	var w *watcher.Watcher
	await.Eventually(s.t, 10*time.Second, "watcher for "+name, func() bool { w = s.reg.Get(name); return w != nil })
	return w
}

func (s *stack) waitState(name string, want watcher.State, d time.Duration) {
	s.t.Helper()
	await.Eventually(s.t, d, fmt.Sprintf("%s to be %s", name, want), func() bool {
		w := s.reg.Get(name)
		return w != nil && w.State() == want
	})
}

// inspect returns the engine's view of a container.
func (s *stack) inspect(id string) container.State {
	s.t.Helper()
	res, err := s.cli.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		s.t.Fatalf("inspect %s: %v", id, err)
	}
	return *res.Container.State
}

func (s *stack) waitEngine(id string, what string, d time.Duration, cond func(container.State) bool) {
	s.t.Helper()
	await.Eventually(s.t, d, what, func() bool { return cond(s.inspect(id)) })
}

// exactlyOneStart waits for the engine's start event of a wake and then
// watches that no second one follows: a wrong second start would arrive
// within the window.
func exactlyOneStart(t *testing.T, starts func() int) {
	t.Helper()
	await.Eventually(t, 5*time.Second, "a start event", func() bool { return starts() >= 1 })
	await.HoldsFor(t, 300*time.Millisecond, "exactly one start", func() bool { return starts() == 1 })
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("got %q, want it to contain %q", got, want)
	}
}

// mustNotContain fails when a public answer repeats an internal detail.
func mustNotContain(t *testing.T, got string, internal ...string) {
	t.Helper()
	for _, s := range internal {
		if strings.Contains(got, s) {
			t.Fatalf("got %q, which repeats the internal %q", got, s)
		}
	}
}
