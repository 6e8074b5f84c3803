package stream

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// fakeRuntime is the test kit's engine holding the one container of a
// test, by name.
type fakeRuntime struct {
	*watchertest.Engine
	name string
}

// hold makes starts wait until the returned gate is closed: a slow wake.
func (f fakeRuntime) hold() chan struct{} {
	gate := make(chan struct{})
	f.Behave(f.name, watchertest.Behaviour{Gate: gate})
	return gate
}

func (f fakeRuntime) startCount() int { return f.Calls("start", f.name) }

// fakeRoutes is a registry reduced to the stream routes.
type fakeRoutes struct {
	mu      sync.Mutex
	rt      *watcher.Routes
	changed chan struct{}
}

func newFakeRoutes() *fakeRoutes {
	return &fakeRoutes{rt: &watcher.Routes{}, changed: make(chan struct{})}
}

func (f *fakeRoutes) Routes() *watcher.Routes {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rt
}

func (f *fakeRoutes) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func (f *fakeRoutes) set(streams map[labels.Stream]*watcher.Watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rt = &watcher.Routes{Streams: streams}
	close(f.changed)
	f.changed = make(chan struct{})
}

// fakeProblems records what ReportProblem was told, by container and key.
type fakeProblems struct {
	mu sync.Mutex
	m  map[string]string
}

func (f *fakeProblems) ReportProblem(name, what string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]string{}
	}
	if err == nil {
		delete(f.m, name+" "+what)
		return
	}
	f.m[name+" "+what] = err.Error()
}

func (f *fakeProblems) get(name, what string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[name+" "+what]
	return v, ok
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends logs to t.Log, so they show only for failing tests.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// upstreams are the test's stand-in for the container's ports.
type upstreams struct {
	tcp, udp string
}

// startUpstreams runs a TCP echo (with an optional greeting sent first) and
// a UDP echo (prefixing replies with the greeting) until the test ends.
func startUpstreams(t *testing.T, greeting string) upstreams {
	t.Helper()
	return startSlowUpstreams(t, greeting, 0)
}

// startSlowUpstreams is startUpstreams with UDP replies sent after delay,
// like an app behind docker-proxy on a busy host.
func startSlowUpstreams(t *testing.T, greeting string, delay time.Duration) upstreams {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); pc.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if greeting != "" {
					_, _ = io.WriteString(c, greeting)
				}
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	wg.Go(func() {
		buf := make([]byte, maxDatagram)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := append([]byte(greeting), buf[:n]...)
			if delay > 0 {
				time.AfterFunc(delay, func() { _, _ = pc.WriteTo(reply, addr) })
				continue
			}
			_, _ = pc.WriteTo(reply, addr)
		}
	})
	return upstreams{tcp: ln.Addr().String(), udp: pc.LocalAddr().String()}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) uint16 {
	t.Helper()
	var addr net.Addr
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr()
		pc.Close()
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr()
		ln.Close()
	}
	_, p, _ := net.SplitHostPort(addr.String())
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

func loopbackStream(t *testing.T, proto labels.Protocol, target uint16) labels.Stream {
	s, err := labels.ParseStream("127.0.0.1:" + strconv.Itoa(int(freePort(t, string(proto)))) +
		":" + strconv.Itoa(int(target)) + "/" + string(proto))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newWatcher builds a watcher of a fake container publishing ports 9000/tcp
// and 9001/udp on ups. awake says whether the container already runs.
func newWatcher(t *testing.T, name string, ups upstreams, streams []labels.Stream, awake bool) (*watcher.Watcher, fakeRuntime) {
	t.Helper()
	return newWatcherWith(t, name, ups, streams, awake, nil)
}

// newWatcherWith is newWatcher with the watcher's config adjusted by opt.
func newWatcherWith(t *testing.T, name string, ups upstreams, streams []labels.Stream, awake bool, opt func(*watcher.Config)) (*watcher.Watcher, fakeRuntime) {
	t.Helper()
	c := watcher.Container{
		ID: name + "-id", Name: name, Status: watcher.StatusStopped,
		Published: map[string]string{"9000/tcp": ups.tcp, "9001/udp": ups.udp},
		// Like a container on Docker's bridge. Without any address the
		// watcher fails the wake resolving its HTTP upstream (port 80),
		// even for a streams-only container.
		Networks: []watcher.Network{{Name: "bridge", IP: netip.MustParseAddr("127.0.0.1")}},
	}
	if awake {
		c.Status, c.StartedAt = watcher.StatusRunning, time.Now()
	}
	rt := fakeRuntime{Engine: watchertest.NewEngine(c), name: name}
	cfg := watcher.Config{
		Name: name,
		Spec: labels.Spec{
			Streams: streams, WakeTimeout: 5 * time.Second, StopMethod: labels.StopMethodStop,
			StopTimeout: time.Second,
		},
		Runtime: rt,
		Log:     testLog(t),
	}
	if opt != nil {
		opt(&cfg)
	}
	w := watcher.New(cfg)
	t.Cleanup(w.Close)
	w.Observe(rt.Container(name))
	if awake {
		await.Eventually(t, 5*time.Second, name+" ready", func() bool { return w.State() == watcher.StateReady })
	}
	return w, rt
}

// startServer runs a stream server on routes until the test ends.
func startServer(t *testing.T, routes Routes, cfg Config) (*Server, *fakeProblems) {
	t.Helper()
	probs := &fakeProblems{}
	cfg.Routes, cfg.Problems, cfg.Log = routes, probs, testLog(t)
	s := NewServer(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5 s of its context ending")
		}
	})
	return s, probs
}

// dialStream connects to a stream listener, retrying while it opens.
func dialStream(t *testing.T, key labels.Stream) net.Conn {
	t.Helper()
	var c net.Conn
	await.Eventually(t, 5*time.Second, "stream listener "+key.String(), func() bool {
		var err error
		c, err = net.Dial(string(key.Protocol), listenAddr(key))
		return err == nil
	})
	t.Cleanup(func() { c.Close() })
	return c
}

var errTestStart = errors.New("exec format error")
