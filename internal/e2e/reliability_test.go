package e2e

import (
	"sleeper/internal/await"

	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
	"sleeper/pkg/watcher"
)

// TestEngineOutage cuts sleeper off the engine (every connection closed,
// new ones refused, as in an engine restart). Changes made during the outage
// are seen after the reconnect, no watcher is lost, and wakes work.
func TestEngineOutage(t *testing.T) {
	t.Parallel()
	proxy := dockertest.NewSocketProxy(t, "")
	s := startSleeper(t, stackOptions{dockerHost: proxy.Host()})
	kept, stopped, added := uniqueName(t, "kept"), uniqueName(t, "stopped"), uniqueName(t, "added")
	s.run(kept, false, nil, "hosts", kept+".localhost")
	stoppedID := s.run(stopped, true, nil, "hosts", stopped+".localhost")
	s.watcher(kept)
	s.waitState(stopped, watcher.StateReady, 10*time.Second)

	proxy.Cut()
	await.Eventually(t, 5*time.Second, "sleeper to notice the outage", func() bool {
		return strings.Contains(s.logs.String(), "docker event stream lost")
	})
	if _, err := s.cli.ContainerStop(context.Background(), stoppedID, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	s.run(added, false, nil, "hosts", added+".localhost")
	time.Sleep(500 * time.Millisecond) // an outage that lasts through a few retries
	proxy.Restore()

	s.waitState(stopped, watcher.StateAsleep, 15*time.Second)
	s.watcher(added)
	for _, n := range []string{kept, added, stopped} {
		if resp, body := s.get(n+".localhost", "/"); resp.StatusCode != 200 {
			t.Fatalf("%s after the outage: %d %q", n, resp.StatusCode, body)
		}
	}
}

// TestHerd2000: 2,000 concurrent held requests on one sleeping container are
// all answered by the app, after exactly one start. It is not parallel:
// 2,000 connections opened at once need the kernel's accept and SYN queues
// (2,048 here) to themselves, not shared with forty other tests.
func TestHerd2000(t *testing.T) {
	s := startSleeper(t, stackOptions{maxHeld: 5000})
	s.http.Transport.(*http.Transport).MaxIdleConnsPerHost = 2000
	name := uniqueName(t, "herd")
	host := name + ".localhost"
	id := s.run(name, false, []string{"START_DELAY=500ms", "APP_NAME=" + name}, "hosts", host)
	s.watcher(name)
	starts, stop := dockertest.Starts(context.Background(), s.cli, id)
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := map[string]int{}
	for range 2000 {
		wg.Go(func() {
			resp, body, err := s.do(http.MethodGet, host, "/", nil)
			key := ""
			switch {
			case err != nil:
				key = err.Error()
			case resp.StatusCode != 200 || body != "hello from "+name+"\n":
				key = fmt.Sprintf("%d %q", resp.StatusCode, body)
			}
			if key != "" {
				mu.Lock()
				bad[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("failed requests: %v", bad)
	}
	exactlyOneStart(t, starts)
}

// TestMaxHeldOverflow: past --max-held, requests get 503 with Retry-After;
// the held ones are answered.
func TestMaxHeldOverflow(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{maxHeld: 5})
	name := uniqueName(t, "full")
	host := name + ".localhost"
	s.run(name, false, []string{"START_DELAY=1s"}, "hosts", host)
	w := s.watcher(name)
	var wg sync.WaitGroup
	codes := make(chan int, 5)
	for range 5 {
		wg.Go(func() {
			resp, _, err := s.do(http.MethodGet, host, "/", nil)
			if err != nil {
				t.Error(err)
				return
			}
			codes <- resp.StatusCode
		})
	}
	await.Eventually(t, 5*time.Second, "5 held requests", func() bool { return w.Info().Held == 5 })
	resp, body := s.get(host, "/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("6th request: %d %q, want 503", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q, want whole seconds ≥ 1", resp.Header.Get("Retry-After"))
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("held request got %d", c)
		}
	}
}

// TestCrashLoopBackoff: a container that exits on every start is not
// restarted in a loop; the failure shows in the API.
func TestCrashLoopBackoff(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "crashloop")
	host := name + ".localhost"
	id := s.run(name, false, []string{"EXIT_AT_START=3"}, "hosts", host)
	s.watcher(name)
	starts, stop := dockertest.Starts(context.Background(), s.cli, id)
	defer stop()
	for range 5 {
		if resp, body := s.get(host, "/"); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
		}
	}
	exactlyOneStart(t, starts) // five quick requests, one start: the backoff
	var errText string
	for _, info := range s.reg.List() {
		if info.Name == name {
			errText = info.Error
		}
	}
	mustContain(t, errText, "exited with code 3")
}

// TestShutdownLetsRequestsFinish: on shutdown the proxy stops accepting,
// an in-flight request finishes, and the container is left running.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "inflight")
	host := name + ".localhost"
	id := s.run(name, true, nil, "hosts", host)
	s.waitState(name, watcher.StateReady, 10*time.Second)
	done := make(chan string, 1)
	go func() {
		resp, body, err := s.do(http.MethodGet, host, "/slow?d=1s", nil)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	await.Eventually(t, 5*time.Second, "request in flight", func() bool { return s.reg.Get(name).InFlight() == 1 })
	s.stop()
	if got := <-done; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("in-flight request during shutdown: %s", got)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(s.base, "http://"), time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
	if st := s.inspect(id); !running(st) {
		t.Fatal("shutdown stopped a container")
	}
}

// rawRequest sends bytes on a fresh connection and returns the status line
// of the answer (or the error), reading at most 5 s.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// TestHostileInput: bad requests are refused before they reach a container.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{readHeaderTimeout: time.Second})
	name := uniqueName(t, "target")
	host := name + ".localhost"
	s.run(name, false, nil, "hosts", host)
	s.watcher(name)
	addr := strings.TrimPrefix(s.base, "http://")
	cases := []struct {
		name, req, want string
	}{
		{"oversized headers", "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", "431"},
		{"garbage request line", "HELLO\r\n\r\n", "400"},
		{"two Content-Lengths", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd", "400"},
		{"IP literal host", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "404"},
		{"unknown host", "GET / HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n", "404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := rawRequest(t, addr, tc.req); !strings.Contains(got, " "+tc.want+" ") {
				t.Fatalf("got %q, want status %s", got, tc.want)
			}
		})
	}
	t.Run("slowloris", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\n")
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if el := time.Since(start); err != nil || el > 3*time.Second {
			t.Fatalf("connection with unfinished headers open for %s (err %v); want closed after the 1 s header timeout", el, err)
		}
	})
	t.Run("CL and TE together", func(t *testing.T) {
		t.Parallel()
		// Transfer-Encoding wins and the Content-Length is dropped before
		// forwarding (RFC 9112 §6.3): sleeper and the app agree on where
		// each request ends, so the "smuggled" request is just a second,
		// separate request, never part of the first one's body.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		smuggled := "GET /status/418 HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
		fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s",
			host, 5+len(smuggled), smuggled)
		br := bufio.NewReader(c)
		first, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(first.Body)
		if first.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("first: %d body %q; the app must see an empty chunked body", first.StatusCode, body)
		}
		second, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if second.StatusCode != 418 || second.Header.Get("X-App-Name") == "" {
			t.Fatalf("second: %d; want the app's own 418 for the separate request", second.StatusCode)
		}
	})
	t.Run("host tricks", func(t *testing.T) {
		t.Parallel()
		for _, h := range []string{strings.ToUpper(host), host + ".", host + ":8080", strings.ToUpper(host) + ".:1"} {
			if resp, body := s.get(h, "/"); resp.StatusCode != 200 {
				t.Fatalf("Host %q: %d %q", h, resp.StatusCode, body)
			}
		}
	})
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestHugeBodyOnHeldRequest: a 256 MiB upload to a sleeping container is
// held without being buffered (TCP backpressure), then streamed to the app.
// It is not parallel: the allocation count is the whole process's, so it
// runs while the package's parallel tests wait.
func TestHugeBodyOnHeldRequest(t *testing.T) {
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "upload")
	host := name + ".localhost"
	s.run(name, false, []string{"START_DELAY=1s"}, "hosts", host)
	s.watcher(name)
	const size = 256 << 20
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest(http.MethodPost, s.base+"/echo", io.LimitReader(zeros{}, size))
	req.Host, req.ContentLength = host, size
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 200 || n != size {
		t.Fatalf("echo: %d, %d bytes back, want 200 and %d", resp.StatusCode, n, size)
	}
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 64<<20 {
		t.Fatalf("allocated %d MiB in this process for a %d MiB streamed body", grew>>20, size>>20)
	}
}

// TestOnlyOptedInContainers: a container without enable=true (absent or
// false) is never routed to, started or stopped, even with other labels.
func TestOnlyOptedInContainers(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	off, absent, on := uniqueName(t, "off"), uniqueName(t, "absent"), uniqueName(t, "on")
	offID := dockertest.Run(t, s.cli, dockertest.Spec{Name: off, Image: dockertest.Image(t),
		Labels: map[string]string{s.prefix + ".enable": "false", s.prefix + ".hosts": off + ".localhost"}})
	absentID := dockertest.Run(t, s.cli, dockertest.Spec{Name: absent, Image: dockertest.Image(t), Start: true,
		Labels: map[string]string{s.prefix + ".hosts": absent + ".localhost", s.prefix + ".idle_timeout": "1s"}})
	s.run(on, false, nil, "hosts", on+".localhost")
	s.watcher(on)
	for _, n := range []string{off, absent} {
		if resp, _ := s.get(n+".localhost", "/"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", n, resp.StatusCode)
		}
		if s.reg.Get(n) != nil {
			t.Fatalf("%s is managed", n)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the 1 s idle_timeout it would have had
	if s.inspect(offID).Running || !running(s.inspect(absentID)) {
		t.Fatal("a container that did not opt in was started or stopped")
	}
}
