// Command tcpbench measures TCP throughput through a sleeper stream listener
// against a direct connection to the same sink, on loopback.
//
// Everything runs in this one process: a sink that reads and discards, and a
// stream.Server whose only route is a real watcher.Watcher over a runtime
// that always reports a running container publishing the sink's port. So the
// relay measured is exactly what sleeper runs for an awake container (route
// lookup, Acquire, resolve, dial, relay, Release), without Docker's own
// docker-proxy in the way, which would slow both paths alike.
//
// A third path, a bare relay (io.Copy both ways between the raw TCPConns,
// which splices on Linux, and nothing else), shows the ceiling of any relay
// in user space on this machine: on loopback the second TCP hop costs the
// kernel as much as the first, so no relay reaches the direct figure when
// the CPUs are the bottleneck. sleeper/bare is sleeper's own overhead.
//
// Each round sends -bytes on each of -conns connections on every path in
// turn, and times from dial to the sink's acknowledgement of the last byte.
// The median of -rounds is reported.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/stream"
	"sleeper/pkg/watcher"
)

func main() {
	var (
		size   = flag.Int64("bytes", 2<<30, "bytes to send per connection and round")
		conns  = flag.Int("conns", 1, "parallel connections")
		rounds = flag.Int("rounds", 5, "rounds; the median is reported")
	)
	flag.Parse()
	if err := run(*size, *conns, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "tcpbench:", err)
		os.Exit(1)
	}
}

func run(size int64, conns, rounds int) error {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sink.Close()
	go serveSink(sink)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxied, stop, err := startSleeper(ctx, sink.Addr().String())
	if err != nil {
		return err
	}
	defer stop()
	bare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer bare.Close()
	go serveBareRelay(bare, sink.Addr().String())

	paths := []struct{ name, addr string }{
		{"direct", sink.Addr().String()}, {"bare", bare.Addr().String()}, {"sleeper", proxied},
	}
	results := make([][]float64, len(paths))
	for range rounds {
		fmt.Print("round:")
		for i, p := range paths {
			v, err := measure(p.addr, size, conns)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			results[i] = append(results[i], v)
			fmt.Printf("  %s %6.0f MB/s", p.name, v)
		}
		fmt.Println()
	}
	d, b, p := median(results[0]), median(results[1]), median(results[2])
	fmt.Printf("median of %d rounds, %d conn x %d MiB:\n", rounds, conns, size>>20)
	fmt.Printf("  direct         %6.0f MB/s\n", d)
	fmt.Printf("  bare relay     %6.0f MB/s  (%.3f of direct)\n", b, b/d)
	fmt.Printf("  sleeper        %6.0f MB/s  (%.3f of direct, %.3f of bare relay)\n", p, p/d, p/b)
	return nil
}

// serveBareRelay forwards every connection to target with nothing but
// io.Copy both ways: the reference a relay cannot beat.
func serveBareRelay(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			go func() {
				_, _ = io.Copy(up, c)
				_ = up.(*net.TCPConn).CloseWrite()
			}()
			_, _ = io.Copy(c, up)
		}()
	}
}

// serveSink reads every connection to its end, then acknowledges with one
// byte, so the sender's clock stops when the last byte has arrived.
func serveSink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 256<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			_, _ = c.Write([]byte{1})
		}()
	}
}

// measure sends size bytes on each of conns connections to addr and returns
// the total throughput in MB/s (10^6 bytes).
func measure(addr string, size int64, conns int) (float64, error) {
	start := time.Now()
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() { errs <- send(addr, size) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(size*int64(conns)) / time.Since(start).Seconds() / 1e6, nil
}

func send(addr string, size int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	for left := size; left > 0; {
		n, err := c.Write(buf[:min(int64(len(buf)), left)])
		if err != nil {
			return err
		}
		left -= int64(n)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return fmt.Errorf("no acknowledgement: %w", err)
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// startSleeper runs a stream server with one route, 127.0.0.1:<free>:9000/tcp,
// to a container that is always awake and publishes 9000/tcp on sinkAddr.
// It returns the stream's address and a function that stops the server.
func startSleeper(ctx context.Context, sinkAddr string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	key := labels.Stream{IP: netip.MustParseAddr("127.0.0.1"), Listen: port, Target: 9000, Protocol: labels.TCP}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt := &awake{c: watcher.Container{
		ID: "bench", Name: "bench", Status: watcher.StatusRunning, StartedAt: time.Now(),
		Published: map[string]string{"9000/tcp": sinkAddr},
		Networks:  []watcher.Network{{Name: "bridge", IP: netip.MustParseAddr("127.0.0.1")}},
	}}
	w := watcher.New(watcher.Config{
		Name: "bench", Runtime: rt, Log: log,
		Spec: labels.Spec{Streams: []labels.Stream{key}, WakeTimeout: 10 * time.Second, StopMethod: labels.StopMethodStop},
	})
	w.Observe(rt.c)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.Wait(waitCtx); err != nil {
		w.Close()
		return "", nil, err
	}
	routes := &oneRoute{rt: &watcher.Routes{Streams: map[labels.Stream]*watcher.Watcher{key: w}}}
	srv := stream.NewServer(stream.Config{Routes: routes, Problems: routes, Log: log})
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(runCtx)
	}()
	stop := func() {
		stopRun()
		<-done
		w.Close()
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if err := routes.err(); err != nil {
			stop()
			return "", nil, err
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("stream listener did not open")
		}
	}
}

func freePort() (uint16, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port), nil
}

// oneRoute is a registry with a fixed route that never changes.
type oneRoute struct {
	rt *watcher.Routes

	mu      sync.Mutex
	problem error
}

func (r *oneRoute) Routes() *watcher.Routes  { return r.rt }
func (r *oneRoute) Changed() <-chan struct{} { return nil }

func (r *oneRoute) ReportProblem(_, _ string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problem = err
}

func (r *oneRoute) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.problem
}

// awake is a runtime whose container is always running.
type awake struct{ c watcher.Container }

func (a *awake) Start(context.Context, string) error                        { return nil }
func (a *awake) Stop(context.Context, string, watcher.StopOptions) error    { return nil }
func (a *awake) Kill(context.Context, string, string) error                 { return nil }
func (a *awake) Pause(context.Context, string) error                        { return nil }
func (a *awake) Unpause(context.Context, string) error                      { return nil }
func (a *awake) Inspect(context.Context, string) (watcher.Container, error) { return a.c, nil }
