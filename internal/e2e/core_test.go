package e2e

import (
	"sleeper/internal/await"

	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
	"sleeper/pkg/watcher"
)

func running(s container.State) bool { return s.Running && !s.Paused }
func exited(s container.State) bool  { return !s.Running && s.Status == container.StateExited }
func paused(s container.State) bool  { return s.Paused }

// TestWakeFromEachSleepingState wakes a container that was only created, one
// stopped by hand and one paused by hand; each answers the held request.
func TestWakeFromEachSleepingState(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	cases := []struct {
		name  string
		start bool
		prep  func(id string)
	}{
		{name: "created", start: false},
		{name: "stopped", start: true, prep: func(id string) {
			if _, err := s.cli.ContainerStop(context.Background(), id, client.ContainerStopOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "paused", start: true, prep: func(id string) {
			if _, err := s.cli.ContainerPause(context.Background(), id, client.ContainerPauseOptions{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := uniqueName(t, tc.name)
			host := name + ".localhost"
			id := s.run(name, tc.start, []string{"APP_NAME=" + name}, "hosts", host)
			if tc.start {
				s.waitState(name, watcher.StateReady, 10*time.Second)
				tc.prep(id)
			}
			s.waitState(name, watcher.StateAsleep, 10*time.Second)
			resp, body := s.get(host, "/")
			if resp.StatusCode != 200 || body != "hello from "+name+"\n" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Sleeper-Wake") == "" {
				t.Fatal("no X-Sleeper-Wake on the first answer after a wake")
			}
			// The next request goes straight through.
			resp, _ = s.get(host, "/")
			if resp.Header.Get("X-Sleeper-Wake") != "" {
				t.Fatal("X-Sleeper-Wake on a request that did not wait")
			}
			if st := s.inspect(id); !running(st) {
				t.Fatalf("engine state %s after wake", st.Status)
			}
		})
	}
}

// TestStopMethods puts a container to sleep by each method after a 1 s idle timeout.
func TestStopMethods(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	for method, asleep := range map[string]func(container.State) bool{
		"stop": exited, "kill": exited, "pause": paused,
	} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			name := uniqueName(t, method)
			host := name + ".localhost"
			id := s.run(name, false, nil, "hosts", host, "idle_timeout", "1s", "stop_method", method)
			s.watcher(name)
			resp, _ := s.get(host, "/")
			if resp.StatusCode != 200 {
				t.Fatalf("wake: %d", resp.StatusCode)
			}
			s.waitEngine(id, "container asleep by "+method, 10*time.Second, asleep)
			s.waitState(name, watcher.StateAsleep, 5*time.Second)
			if method == "stop" {
				if code := s.inspect(id).ExitCode; code != 0 {
					t.Fatalf("stop exited with %d, want a graceful 0 (SIGTERM handled)", code)
				}
			}
			resp, body := s.get(host, "/")
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from") {
				t.Fatalf("wake after %s: %d %q", method, resp.StatusCode, body)
			}
		})
	}
}

// TestHerdOneStart sends 200 concurrent requests to a sleeping container:
// exactly one start, every request answered by the app.
func TestHerdOneStart(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "herd")
	host := name + ".localhost"
	id := s.run(name, false, []string{"START_DELAY=300ms", "APP_NAME=" + name}, "hosts", host)
	s.watcher(name)
	starts, stop := dockertest.Starts(context.Background(), s.cli, id)
	defer stop()
	s.echoHerd(t, host, 200)
	exactlyOneStart(t, starts)
}

// echoHerd sends n concurrent POSTs to host's /echo, each with its own
// body, and fails the test unless every one comes back 200 with its body:
// no request lost, none answered with another's.
func (s *stack) echoHerd(t *testing.T, host string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			resp, body, err := s.do(http.MethodPost, host, "/echo", strings.NewReader(fmt.Sprint("body-", i)))
			switch {
			case err != nil:
				errs <- err
			case resp.StatusCode != http.StatusOK || body != fmt.Sprint("body-", i):
				errs <- fmt.Errorf("request %d: %d %q", i, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestReadinessWaitsForTheApp: the app listens 1 s after start, behind
// docker-proxy which accepts at once; the held request is answered by the app.
func TestReadinessWaitsForTheApp(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "slow")
	host := name + ".localhost"
	s.run(name, false, []string{"START_DELAY=1s", "APP_NAME=" + name}, "hosts", host)
	s.watcher(name)
	start := time.Now()
	resp, body := s.get(host, "/")
	if resp.StatusCode != 200 || body != "hello from "+name+"\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("answered after %s, before the app listened", el)
	}
}

// TestHealthcheckReadiness uses the image's HEALTHCHECK (events, no polling).
func TestHealthcheckReadiness(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "health")
	host := name + ".localhost"
	dockertest.Run(t, s.cli, dockertest.Spec{
		Name: name, Image: dockertest.HealthImage(t), Labels: s.labels("hosts", host),
		Env: []string{"APP_NAME=" + name}, Publish: []string{"8080/tcp"},
	})
	s.watcher(name)
	resp, body := s.get(host, "/")
	if resp.StatusCode != 200 || body != "hello from "+name+"\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	events, _ := s.watcher(name).Progress()
	var steps []string
	for _, e := range events {
		steps = append(steps, string(e.Type)+": "+e.Message)
	}
	mustContain(t, strings.Join(steps, "\n"), "waiting_ready: waiting for the health check")
}

// TestStreamsAndUpgradesKeepAwake: a streamed response and an upgraded
// connection each outlast the idle timeout; the container sleeps after.
func TestStreamsAndUpgradesKeepAwake(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "stream")
		host := name + ".localhost"
		id := s.run(name, true, nil, "hosts", host, "idle_timeout", "1s")
		s.waitState(name, watcher.StateReady, 10*time.Second)
		resp, body := s.get(host, "/stream?n=6&interval=500ms")
		if resp.StatusCode != 200 || strings.Count(body, "\n") != 6 {
			t.Fatalf("stream: %d %q", resp.StatusCode, body)
		}
		if st := s.inspect(id); !running(st) {
			t.Fatal("slept during a 3 s streamed response with a 1 s idle timeout")
		}
		s.waitEngine(id, "sleep after the stream", 10*time.Second, exited)
	})
	t.Run("upgrade", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "upgrade")
		host := name + ".localhost"
		id := s.run(name, true, nil, "hosts", host, "idle_timeout", "1s")
		s.waitState(name, watcher.StateReady, 10*time.Second)
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /upgrade HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", host)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		// Quiet for three idle timeouts: the open connection alone keeps it awake.
		time.Sleep(3 * time.Second)
		if st := s.inspect(id); !running(st) {
			t.Fatal("slept with an upgraded connection open")
		}
		fmt.Fprint(conn, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo over the upgraded connection: %q %v", buf, err)
		}
		conn.Close()
		s.waitEngine(id, "sleep after the upgrade closed", 10*time.Second, exited)
	})
}

// TestManualStartStop: a container started or stopped by hand is simply
// awake or asleep; sleeper does not undo it.
func TestManualStartStop(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "manual")
	host := name + ".localhost"
	id := s.run(name, false, nil, "hosts", host)
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	if _, err := s.cli.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitState(name, watcher.StateReady, 10*time.Second)
	if _, err := s.cli.ContainerStop(context.Background(), id, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // nothing may restart it on its own
	if st := s.inspect(id); st.Running {
		t.Fatal("sleeper restarted a container stopped by hand")
	}
}

// TestWakeFailures: a container that exits at start fails the held request
// with 502 and the reason, fast; one slower than wake_timeout gets 504.
func TestWakeFailures(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	t.Run("exit at start", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "crash")
		host := name + ".localhost"
		// An hour's wake timeout: a 502 can only come from noticing the death.
		s.run(name, false, []string{"EXIT_AT_START=3"}, "hosts", host, "wake_timeout", "1h")
		s.watcher(name)
		resp, body := s.get(host, "/")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
		}
		mustContain(t, body, "exited with code 3")
		if strings.Count(strings.TrimSpace(body), "\n") != 0 {
			t.Fatalf("reason is not one line: %q", body)
		}
	})
	t.Run("wake timeout", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "late")
		host := name + ".localhost"
		s.run(name, false, []string{"START_DELAY=30s"}, "hosts", host, "wake_timeout", "1s")
		s.watcher(name)
		start := time.Now()
		resp, body := s.get(host, "/")
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("got %d %q, want 504", resp.StatusCode, body)
		}
		// The app would answer after 30 s: a 504 is the timeout; and it
		// cannot come before the timeout.
		if el := time.Since(start); el < time.Second {
			t.Fatalf("504 after %s, before the 1 s wake_timeout", el)
		}
	})
}

// TestBadLabelsSkipOnlyThatContainer: a container with a broken label is not
// managed and shows why; its neighbour works; sleeper keeps running.
func TestBadLabelsSkipOnlyThatContainer(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	bad := uniqueName(t, "bad")
	good := uniqueName(t, "good")
	badID := s.run(bad, false, nil, "hosts", bad+".localhost", "idle_timeout", "soon")
	s.run(good, false, nil, "hosts", good+".localhost")
	s.watcher(good)
	var errText string
	await.Eventually(t, 10*time.Second, "config error for "+bad, func() bool {
		for _, info := range s.reg.List() {
			if info.Name == bad && info.Error != "" {
				errText = info.Error
				return true
			}
		}
		return false
	})
	mustContain(t, errText, s.prefix+".idle_timeout")
	mustContain(t, errText, `"soon"`)
	mustContain(t, s.logs.String(), s.prefix+".idle_timeout")
	if s.reg.Get(bad) != nil {
		t.Fatal("a container with bad labels is managed")
	}
	resp, _ := s.get(bad+".localhost", "/")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bad container's host answered %d, want 404", resp.StatusCode)
	}
	if st := s.inspect(badID); st.Running {
		t.Fatal("a container with bad labels was started")
	}
	resp, _ = s.get(good+".localhost", "/")
	if resp.StatusCode != 200 {
		t.Fatalf("good container: %d", resp.StatusCode)
	}
}
