package stream

import (
	"sleeper/internal/watchertest"

	"sleeper/internal/await"

	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// TestTCPWakeRelaysFirstBytes: bytes sent before the container is up arrive
// first and in order, even beyond the 64 KiB buffer, and a half-close
// travels both ways.
func TestTCPWakeRelaysFirstBytes(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, "")
	key := loopbackStream(t, labels.TCP, 9000)
	w, rt := newWatcher(t, "pg", ups, []labels.Stream{key}, false)
	gate := rt.hold() // a slow start
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})

	c := dialStream(t, key)
	sent := make([]byte, 3*maxPending)
	for i := range sent {
		sent[i] = byte(i % 253)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(sent)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	await.Eventually(t, 5*time.Second, "the start call", func() bool { return rt.startCount() == 1 })
	close(gate)
	got, err := io.ReadAll(c) // ends at the echo's half-close, passed back on
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatalf("echo differs: got %d bytes, sent %d", len(got), len(sent))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 5*time.Second, "release after close", func() bool { return w.InFlight() == 0 })
}

// TestTCPConnectionHoldsContainer: an open connection is in flight on the
// watcher, however quiet, and stops being so when it closes.
func TestTCPConnectionHoldsContainer(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, "")
	key := loopbackStream(t, labels.TCP, 9000)
	w, _ := newWatcher(t, "mc", ups, []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})

	c := dialStream(t, key)
	echo(t, c, "hello")
	if n := w.InFlight(); n != 1 {
		t.Fatalf("in flight %d with an open connection, want 1", n)
	}
	c.Close()
	await.Eventually(t, 5*time.Second, "release after close", func() bool { return w.InFlight() == 0 })
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: got %q, %v; want %q", buf, err, msg)
	}
	_ = c.SetReadDeadline(time.Time{})
}

// TestTCPWakeFailureClosesClient: a container that cannot start closes the
// client promptly instead of leaving it hanging for the wake timeout.
func TestTCPWakeFailureClosesClient(t *testing.T) {
	t.Parallel()
	ups := startUpstreams(t, "")
	key := loopbackStream(t, labels.TCP, 9000)
	w, rt := newWatcher(t, "broken", ups, []labels.Stream{key}, false)
	rt.Behave(rt.name, watchertest.Behaviour{StartErr: errTestStart})
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})

	c := dialStream(t, key)
	// The read deadline is shorter than the 5 s wake timeout: a close that
	// waited for the timeout comes after it and fails the test.
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if errors.Is(err, io.EOF) || isReset(err) {
		return
	}
	t.Fatalf("read: %v, want the connection closed", err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestStreamMovesToNewWatcher: the same stream claimed by a new container
// keeps its listener; new connections go to the new container.
func TestStreamMovesToNewWatcher(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.TCP, 9000)
	oldW, _ := newWatcher(t, "old", startUpstreams(t, "old:"), []labels.Stream{key}, true)
	newW, _ := newWatcher(t, "new", startUpstreams(t, "new:"), []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: oldW})
	startServer(t, routes, Config{})

	first := dialStream(t, key)
	greeting(t, first, "old:")
	routes.set(map[labels.Stream]*watcher.Watcher{key: newW})
	second := dialStream(t, key)
	greeting(t, second, "new:")
	// The old connection lives on, still holding the old container.
	echo(t, first, "still there")
	if oldW.InFlight() != 1 || newW.InFlight() != 1 {
		t.Fatalf("in flight old=%d new=%d, want 1 each", oldW.InFlight(), newW.InFlight())
	}
}

func greeting(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != want {
		t.Fatalf("greeting %q, %v; want %q", buf, err, want)
	}
	_ = c.SetReadDeadline(time.Time{})
}

// TestListenerFollowsRoutes: a removed route closes its listener and the
// connections it accepted; Run's end closes the rest.
func TestListenerFollowsRoutes(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.TCP, 9000)
	w, _ := newWatcher(t, "gone", startUpstreams(t, ""), []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})

	c := dialStream(t, key)
	echo(t, c, "x")
	routes.set(map[labels.Stream]*watcher.Watcher{})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("read after the route went away: %v, want closed", err)
	}
	await.Eventually(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", listenAddr(key))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	await.Eventually(t, 5*time.Second, "release", func() bool { return w.InFlight() == 0 })
}

// TestBindFailureReported: a port taken on the host is a problem on the
// container, cleared once the port frees up.
func TestBindFailureReported(t *testing.T) {
	t.Parallel()
	blocker, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	_, port, _ := net.SplitHostPort(blocker.Addr().String())
	key, err := labels.ParseStream("127.0.0.1:" + port + ":9000/tcp")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := newWatcher(t, "taken", startUpstreams(t, ""), []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	_, probs := startServer(t, routes, Config{BindRetry: 20 * time.Millisecond})

	what := "stream " + key.String()
	await.Eventually(t, 5*time.Second, "the bind problem on the container", func() bool {
		msg, ok := probs.get("taken", what)
		return ok && strings.Contains(msg, "address already in use")
	})
	blocker.Close()
	await.Eventually(t, 5*time.Second, "the problem to clear", func() bool { _, ok := probs.get("taken", what); return !ok })
	echo(t, dialStream(t, key), "bound at last")
}

// TestUDPWakeQueuesInOrder: datagrams sent while the container wakes are
// forwarded in order once it is up, and each reply reaches its own client.
func TestUDPWakeQueuesInOrder(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.UDP, 9001)
	w, rt := newWatcher(t, "game", startUpstreams(t, ""), []labels.Stream{key}, false)
	gate := rt.hold()
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	s, _ := startServer(t, routes, Config{})

	a, b := dialStream(t, key), dialStream(t, key)
	// The listener may not be bound yet when the first datagram goes out:
	// wait until one flow exists before counting on order.
	await.Eventually(t, 5*time.Second, "the first flow", func() bool {
		_, _ = a.Write([]byte("a-probe"))
		return s.flowCount.Load() == 1
	})
	for i := range 5 {
		_, _ = fmt.Fprintf(a, "a-%d", i)
		_, _ = fmt.Fprintf(b, "b-%d", i)
	}
	await.Eventually(t, 5*time.Second, "the start call", func() bool { return rt.startCount() == 1 })
	close(gate)
	for _, tc := range []struct {
		c      net.Conn
		prefix string
	}{{a, "a-"}, {b, "b-"}} {
		var got []string
		for len(got) < 5 {
			msg := readDatagram(t, tc.c)
			if msg == "a-probe" {
				continue
			}
			got = append(got, msg)
		}
		for i, msg := range got {
			if want := fmt.Sprintf("%s%d", tc.prefix, i); msg != want {
				t.Fatalf("datagram %d: got %q, want %q (all: %q)", i, msg, want, got)
			}
		}
	}
	// Held only while a batch is sent, which may end just after the
	// echo came back: a UDP flow must not hold the container beyond it.
	await.Eventually(t, 5*time.Second, "no UDP flow holding the container", func() bool { return w.InFlight() == 0 })
}

func readDatagram(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

// TestUDPFlowExpires: a flow with no traffic for the flow idle timeout is
// dropped and its goroutines end; the client's next datagram opens a new one.
func TestUDPFlowExpires(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.UDP, 9001)
	w, _ := newWatcher(t, "dns", startUpstreams(t, "re:"), []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	s, _ := startServer(t, routes, Config{FlowIdleTimeout: 100 * time.Millisecond})

	c := dialStream(t, key)
	var got string
	await.Eventually(t, 5*time.Second, "a reply", func() bool {
		_, _ = c.Write([]byte("q1"))
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		got = string(buf[:max(n, 0)])
		return err == nil
	})
	if got != "re:q1" {
		t.Fatalf("reply %q", got)
	}
	await.Eventually(t, 5*time.Second, "the idle flow to expire", func() bool { return s.flowCount.Load() == 0 })
	_, _ = c.Write([]byte("q2"))
	if got := readDatagram(t, c); got != "re:q2" {
		t.Fatalf("reply after expiry %q", got)
	}
}

// TestManyTCPClientsOneWake: concurrent clients of a sleeping container
// share one start and all get through.
func TestManyTCPClientsOneWake(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.TCP, 9000)
	w, rt := newWatcher(t, "herd", startUpstreams(t, ""), []labels.Stream{key}, false)
	gate := rt.hold()
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})
	dialStream(t, key).Close() // the listener is up; this one wakes it

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			c, err := net.Dial("tcp", listenAddr(key))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := fmt.Sprintf("client-%d", i)
			_, _ = io.WriteString(c, msg)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
				errs <- fmt.Errorf("client %d: %q %v", i, buf, err)
			}
		})
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := rt.startCount(); n != 1 {
		t.Fatalf("%d starts, want 1", n)
	}
}

// TestUDPFlowOutlivesLongWake: a wake longer than the flow idle timeout
// must not expire the flow before the reply to its queued datagram, which
// takes less than that timeout once sent. (Whether a regression shows here
// depends on the idle timer's phase, about two runs in three; the Docker
// test with a health check catches it every time.)
func TestUDPFlowOutlivesLongWake(t *testing.T) {
	t.Parallel()
	const flowIdle, replyDelay = 300 * time.Millisecond, 200 * time.Millisecond
	key := loopbackStream(t, labels.UDP, 9001)
	w, rt := newWatcher(t, "slow", startSlowUpstreams(t, "re:", replyDelay), []labels.Stream{key}, false)
	gate := rt.hold()
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	s, _ := startServer(t, routes, Config{FlowIdleTimeout: flowIdle})

	c := dialStream(t, key)
	await.Eventually(t, 5*time.Second, "the start call", func() bool {
		_, _ = c.Write([]byte("hello"))
		return rt.startCount() == 1
	})
	// Still waking well past the flow idle timeout: the flow stays.
	await.HoldsFor(t, 3*flowIdle, "one flow during the wake", func() bool { return s.flowCount.Load() == 1 })
	close(gate)
	if got := readDatagram(t, c); got != "re:hello" {
		t.Fatalf("reply %q", got)
	}
}

// TestUDPFlowFollowsMovedUpstream: when the container comes back on another
// port without this flow seeing a wake, the refusal from the old port makes
// the flow resolve again, and a later datagram reaches the new one.
func TestUDPFlowFollowsMovedUpstream(t *testing.T) {
	t.Parallel()
	key := loopbackStream(t, labels.UDP, 9001)
	old, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	go func() { // a one-socket echo this test can close
		buf := make([]byte, 1500)
		for {
			n, addr, err := old.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = old.WriteTo(append([]byte("old:"), buf[:n]...), addr)
		}
	}()
	w, rt := newWatcher(t, "moving", upstreams{udp: old.LocalAddr().String()}, []labels.Stream{key}, true)
	routes := newFakeRoutes()
	routes.set(map[labels.Stream]*watcher.Watcher{key: w})
	startServer(t, routes, Config{})

	c := dialStream(t, key)
	await.Eventually(t, 5*time.Second, "a reply from the old port", func() bool {
		_, _ = c.Write([]byte("a"))
		return readDatagramWithin(c, 100*time.Millisecond) == "old:a"
	})

	// The old port closes and the container is observed on a new one.
	// Without a network its HTTP upstream (port 80) does not resolve, so the
	// watcher keeps its Upstream pointer: only the refusal can tell.
	old.Close()
	moved := startUpstreams(t, "new:")
	rt.Update(rt.name, func(c *watcher.Container) {
		c.Published = map[string]string{"9001/udp": moved.udp}
		c.Networks = nil
	})
	before := w.Generation()
	c2, _ := rt.Inspect(t.Context(), rt.name)
	w.Observe(c2)
	if w.Generation() != before {
		t.Fatal("the watcher counted a wake: this test no longer covers the refusal path")
	}
	await.Eventually(t, 5*time.Second, "a reply from the new port", func() bool {
		_, _ = c.Write([]byte("b"))
		return readDatagramWithin(c, 100*time.Millisecond) == "new:b"
	})
}

func readDatagramWithin(c net.Conn, d time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}
