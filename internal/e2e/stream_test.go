package e2e

import (
	"sleeper/internal/await"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/internal/dockertest"
	"sleeper/pkg/stream"
	"sleeper/pkg/watcher"
)

// startStreamServer runs a stream server on the stack's registry until the
// test ends, logging into the stack's logs. It returns the registry's List.
func (s *stack) startStreamServer() (list func() []watcher.Info) {
	s.t.Helper()
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := stream.NewServer(stream.Config{
		Routes: s.reg, Problems: s.reg, Log: log,
		FlowIdleTimeout: time.Second, BindRetry: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				s.t.Errorf("stream server: %v", err)
			}
		case <-time.After(10 * time.Second):
			s.t.Error("stream server did not stop within 10 s")
		}
	})
	return s.reg.List
}

// runStreamApp creates (and does not start) a test app container managed by
// s with its echo ports 9000/tcp and 9001/udp published on loopback.
func (s *stack) runStreamApp(t *testing.T, name string, env []string, kv ...string) string {
	t.Helper()
	return dockertest.Run(t, s.cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Labels: s.labels(kv...),
		Env: env, Publish: []string{"9000/tcp", "9001/udp"},
	})
}

// freeLoopbackPort returns a port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t *testing.T, network string) int {
	t.Helper()
	var addr string
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		pc.Close()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// dialStream connects once the stream listener is open.
func dialStream(t *testing.T, network string, port int) net.Conn {
	t.Helper()
	var c net.Conn
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	await.Eventually(t, 10*time.Second, "stream listener on "+addr, func() bool {
		var err error
		c, err = net.Dial(network, addr)
		return err == nil
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// waitBound waits until sleeper holds the stream port, without connecting
// (a connection would start the wake): binding it ourselves must fail.
func waitBound(t *testing.T, network string, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	await.Eventually(t, 10*time.Second, "sleeper to listen on "+addr, func() bool {
		var c io.Closer
		var err error
		if network == "udp" {
			c, err = net.ListenPacket("udp", addr)
		} else {
			c, err = net.Listen("tcp", addr)
		}
		if err == nil {
			c.Close() // not ours yet; sleeper retries a failed bind at once
		}
		return err != nil
	})
}

func echoOnce(c net.Conn, msg string, timeout time.Duration) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// TestStreamTCPWakesOnConnect: the first connection to a container that was
// only created wakes it, and its bytes are echoed by the app.
func TestStreamTCPWakesOnConnect(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "tcp")
	port := freeLoopbackPort(t, "tcp")
	id := s.runStreamApp(t, name, nil, "streams", fmt.Sprintf("127.0.0.1:%d:9000/tcp", port))
	s.watcher(name)
	if st := s.inspect(id); st.Running {
		t.Fatal("container runs before any client")
	}
	c := dialStream(t, "tcp", port)
	if err := echoOnce(c, "hello through sleeper", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := s.inspect(id); !running(st) {
		t.Fatalf("engine state %s after the echo", st.Status)
	}
}

// TestStreamTCPWakeByListeningSocket: sleeper runs on the engine's host, so
// a TCP-only container's wake is told ready by the app's listening socket
// in its network namespace (read through the pid inspect gives), not by
// waiting out the published port's proxy; an app that opens its port only
// after a delay is echoed through the stream listener all the same.
func TestStreamTCPWakeByListeningSocket(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "tcplisten")
	port := freeLoopbackPort(t, "tcp")
	s.runStreamApp(t, name, []string{"START_DELAY=700ms"}, "streams", fmt.Sprintf("127.0.0.1:%d:9000/tcp", port))
	s.watcher(name)
	c := dialStream(t, "tcp", port)
	if err := echoOnce(c, "ready by its socket", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	mustContain(t, s.logs.String(), `signal="a listening socket in the container's network namespace"`)
}

// TestStreamDataWake: with stream_wake=data a bare connect and close (a
// port scanner, a TCP monitor) does not start the container; a client that
// sends bytes wakes it and gets its echo.
func TestStreamDataWake(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "tcpdata")
	port := freeLoopbackPort(t, "tcp")
	id := s.runStreamApp(t, name, nil, "streams", fmt.Sprintf("127.0.0.1:%d:9000/tcp", port), "stream_wake", "data")
	s.watcher(name)
	starts, stop := dockertest.Starts(context.Background(), s.cli, id)
	defer stop()
	waitBound(t, "tcp", port)
	for range 3 {
		dialStream(t, "tcp", port).Close()
	}
	await.HoldsFor(t, 2*time.Second, "asleep after bare connects", func() bool { return starts() == 0 && !s.inspect(id).Running })
	if err := echoOnce(dialStream(t, "tcp", port), "first bytes wake it", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	exactlyOneStart(t, starts)
}

// TestStreamTCPHerdOneStart: 100 clients connect to a sleeping container at
// once; exactly one start, every client echoed.
func TestStreamTCPHerdOneStart(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "tcpherd")
	port := freeLoopbackPort(t, "tcp")
	id := s.runStreamApp(t, name, []string{"START_DELAY=300ms"}, "streams", fmt.Sprintf("127.0.0.1:%d:9000/tcp", port))
	s.watcher(name)
	starts, stop := dockertest.Starts(context.Background(), s.cli, id)
	defer stop()
	waitBound(t, "tcp", port)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := echoOnce(c, fmt.Sprintf("client-%d", i), 30*time.Second); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	exactlyOneStart(t, starts)
	if st := s.inspect(id); !running(st) {
		t.Fatalf("engine state %s", st.Status)
	}
}

// TestStreamLongSessionKeepsAwake: an open, quiet TCP connection keeps the
// container awake past its 1 s idle timeout; it sleeps once it closes.
func TestStreamLongSessionKeepsAwake(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "session")
	port := freeLoopbackPort(t, "tcp")
	id := s.runStreamApp(t, name, nil, "streams", fmt.Sprintf("127.0.0.1:%d:9000/tcp", port), "idle_timeout", "1s")
	w := s.watcher(name)
	c := dialStream(t, "tcp", port)
	if err := echoOnce(c, "login", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Quiet for three idle timeouts: it must stay up the whole time.
	await.HoldsFor(t, 3*time.Second, "ready with an open connection", func() bool { return w.State() == watcher.StateReady })
	if st := s.inspect(id); !running(st) {
		t.Fatalf("engine state %s with an open connection", st.Status)
	}
	if err := echoOnce(c, "still here", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.waitEngine(id, "container asleep after the connection closed", 15*time.Second, exited)
	s.waitState(name, watcher.StateAsleep, 5*time.Second)
}

// TestStreamUDPWakesAndSleeps: a datagram to a sleeping container wakes it,
// the reply reaches the client, and it sleeps once the traffic stops.
func TestStreamUDPWakesAndSleeps(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "udp")
	port := freeLoopbackPort(t, "udp")
	id := s.runStreamApp(t, name, nil, "streams", fmt.Sprintf("127.0.0.1:%d:9001/udp", port), "idle_timeout", "1s")
	s.watcher(name)
	starts, stop := dockertest.Starts(context.Background(), s.cli, id)
	defer stop()
	waitBound(t, "udp", port)
	c := dialStream(t, "udp", port)
	// A UDP-only app without a health check is ready as soon as it runs, so
	// the datagram that woke it can reach the container a moment before the
	// app binds its socket. Real clients resend; so does this one, more often
	// than the 1 s idle timeout so that every resend meets the same wake.
	var reply string
	await.Eventually(t, 30*time.Second, "a UDP reply", func() bool {
		if _, err := c.Write([]byte("ping")); err != nil {
			return false
		}
		reply = readDatagram(c, 300*time.Millisecond)
		return reply != ""
	})
	if reply != "ping" {
		t.Fatalf("reply %q", reply)
	}
	if n := starts(); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}
	s.waitEngine(id, "container asleep after UDP traffic stopped", 15*time.Second, exited)
	s.waitState(name, watcher.StateAsleep, 5*time.Second)
}

// TestStreamUDPFirstDatagramWithHealthcheck: with a health check, readiness
// means the app listens, so the very datagram that woke the container is
// answered, without any resend.
func TestStreamUDPFirstDatagramWithHealthcheck(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "udphc")
	port := freeLoopbackPort(t, "udp")
	id := dockertest.Run(t, s.cli, dockertest.Spec{
		Name: name, Image: dockertest.HealthImage(t),
		Labels:  s.labels("streams", fmt.Sprintf("127.0.0.1:%d:9001/udp", port)),
		Publish: []string{"8080/tcp", "9001/udp"},
	})
	s.watcher(name)
	waitBound(t, "udp", port)
	c := dialStream(t, "udp", port)
	if _, err := c.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if got := readDatagram(c, 30*time.Second); got != "first" {
		t.Logf("9001/udp is published on %s", dockertest.HostPort(t, s.cli, id, "9001/udp"))
		t.Fatalf("reply %q to the first datagram, want %q", got, "first")
	}
	if st := s.inspect(id); !running(st) {
		t.Fatalf("engine state %s", st.Status)
	}
}

// readDatagram returns the next datagram on c, or "" after timeout.
func readDatagram(c net.Conn, timeout time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// TestStreamCrashClosesClient: a container that exits at start closes the
// waiting TCP client within seconds, not at the wake timeout.
func TestStreamCrashClosesClient(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	s.startStreamServer()
	name := uniqueName(t, "crash")
	port := freeLoopbackPort(t, "tcp")
	// An hour's wake timeout: only noticing the death can close the client
	// before the read deadline.
	s.runStreamApp(t, name, []string{"EXIT_AT_START=3"}, "streams", fmt.Sprintf("127.0.0.1:%d:9000/tcp", port), "wake_timeout", "1h")
	s.watcher(name)
	c := dialStream(t, "tcp", port)
	_, _ = io.WriteString(c, "hello?")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read: %v; want the connection closed", err)
	}
	mustContain(t, s.logs.String(), "stream wake failed")
}

// TestStreamPortTakenIsAProblem: a stream port another process holds shows
// as the container's error, naming the port; it clears once the port frees.
func TestStreamPortTakenIsAProblem(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	list := s.startStreamServer()
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	_, port, _ := net.SplitHostPort(blocker.Addr().String())
	name := uniqueName(t, "taken")
	s.runStreamApp(t, name, nil, "streams", "127.0.0.1:"+port+":9000/tcp")
	s.watcher(name)
	containerError := func() string {
		for _, info := range list() {
			if info.Name == name {
				return info.Error
			}
		}
		return ""
	}
	await.Eventually(t, 10*time.Second, "the bind error on the container",
		func() bool { return strings.Contains(containerError(), ":"+port+":") })
	mustContain(t, containerError(), "address already in use")
	mustContain(t, s.logs.String(), "cannot open stream listener")
	blocker.Close()
	await.Eventually(t, 10*time.Second, "the error to clear", func() bool { return containerError() == "" })
}
