package dockertest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// answerTimeout is how long a freshly started testapp gets to answer HTTP; it
// normally takes well under a second.
const answerTimeout = 15 * time.Second

// waitHTTP polls url until it answers 200 and returns the body and headers. A TCP
// connect alone proves nothing: docker-proxy accepts on the published port even while
// nothing listens inside the container.
func waitHTTP(t *testing.T, url string, timeout time.Duration) (string, http.Header) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				return string(body), resp.Header
			}
			lastErr = rerr
			if rerr == nil {
				lastErr = &statusError{resp.Status}
			}
		} else {
			lastErr = err
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("GET %s: no 200 within %v: %v", url, timeout, lastErr)
	return "", nil
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "status " + e.status }

// waitCount polls count until it reaches want, failing on a broken subscription.
func waitCount(t *testing.T, count func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := count()
		if got == want {
			return
		}
		if got < 0 || got > want || time.Now().After(deadline) {
			t.Fatalf("start events = %d, want %d", got, want)
		}
		time.Sleep(pollInterval)
	}
}

func exited(code int) func(container.State) bool {
	return func(s container.State) bool { return s.Status == container.StateExited && s.ExitCode == code }
}

func TestApp(t *testing.T) {
	t.Parallel()
	cli := Client(t)
	RemoveLeftovers(t, cli)
	id := Run(t, cli, Spec{
		Image:   Image(t),
		Env:     []string{"APP_NAME=alpha"},
		Publish: []string{"8080/tcp", "9000/tcp", "9001/udp"},
		Labels:  map[string]string{"purpose": "dockertest"},
	})
	count, stop := Starts(t.Context(), cli, id)
	defer stop()
	if _, err := cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}

	httpAddr := HostPort(t, cli, id, "8080/tcp")
	body, hdr := waitHTTP(t, "http://"+httpAddr+"/", answerTimeout)
	if body != "hello from alpha\n" || hdr.Get("X-App-Name") != "alpha" {
		t.Fatalf("GET / = %q, X-App-Name %q; want hello from alpha", body, hdr.Get("X-App-Name"))
	}
	waitCount(t, count, 1)

	t.Run("labels", func(t *testing.T) {
		res, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l := res.Container.Config.Labels
		if l[LabelKey] != "1" || l["purpose"] != "dockertest" {
			t.Errorf("labels = %v, want %s=1 and purpose=dockertest", l, LabelKey)
		}
		if !strings.HasPrefix(res.Container.Name, "/"+NamePrefix) {
			t.Errorf("name = %q, want prefix %q", res.Container.Name, NamePrefix)
		}
	})
	t.Run("tcp echo", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", HostPort(t, cli, id, "9000/tcp"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "ping over tcp")
		buf := make([]byte, len("ping over tcp"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping over tcp" {
			t.Fatalf("tcp echo = %q, %v", buf, err)
		}
	})
	t.Run("udp echo", func(t *testing.T) {
		c, err := net.Dial("udp", HostPort(t, cli, id, "9001/udp"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// UDP may drop a datagram; a few tries with a short deadline each.
		buf := make([]byte, 100)
		for try := range 5 {
			io.WriteString(c, "ping over udp")
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			if err == nil {
				if got := string(buf[:n]); got != "ping over udp" {
					t.Fatalf("udp echo = %q", got)
				}
				return
			}
			t.Logf("udp try %d: %v", try, err)
		}
		t.Fatal("no udp echo")
	})
	t.Run("stream", func(t *testing.T) {
		resp, err := http.Get("http://" + httpAddr + "/stream?n=4&interval=50ms")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []string
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
			lines = append(lines, sc.Text())
		}
		if len(lines) != 4 || lines[3] != "line 4 of 4" {
			t.Fatalf("stream lines = %q, want 4", lines)
		}
	})
	t.Run("headers", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+httpAddr+"/headers", nil)
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h http.Header
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		if h.Get("X-Forwarded-Proto") != "https" || h.Get("Host") != httpAddr {
			t.Errorf("headers = %v", h)
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade answered %s, want 101", resp.Status)
		}
		for _, msg := range []string{"first", "second"} {
			io.WriteString(c, msg)
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
				t.Fatalf("upgraded echo = %q, %v; want %q", buf, err, msg)
			}
		}
	})
	t.Run("stop exits 0", func(t *testing.T) {
		timeout := 10
		if _, err := cli.ContainerStop(t.Context(), id, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		// Exit code 0, not 137: the app handled SIGTERM instead of being
		// killed at the stop timeout.
		WaitState(t, cli, id, exited(0), 5*time.Second)
	})
	t.Run("restart counts and answers", func(t *testing.T) {
		if _, err := cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		addr := HostPort(t, cli, id, "8080/tcp")
		if addr != httpAddr {
			t.Logf("host port changed across restart: %s -> %s", httpAddr, addr)
		}
		waitHTTP(t, "http://"+addr+"/", answerTimeout)
		waitCount(t, count, 2)
	})
}

func TestExitAtStart(t *testing.T) {
	t.Parallel()
	cli := Client(t)
	id := Run(t, cli, Spec{Image: Image(t), Env: []string{"EXIT_AT_START=3"}, Start: true})
	WaitState(t, cli, id, exited(3), 10*time.Second)
}

func TestExitAfter(t *testing.T) {
	t.Parallel()
	cli := Client(t)
	id := Run(t, cli, Spec{Image: Image(t), Env: []string{"EXIT_AFTER=300ms"}, Start: true})
	WaitState(t, cli, id, func(s container.State) bool { return s.Running }, 10*time.Second)
	WaitState(t, cli, id, exited(3), 10*time.Second)
}

func TestStartDelay(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	cli := Client(t)
	id := Run(t, cli, Spec{Image: Image(t), Env: []string{"START_DELAY=" + delay.String()}, Publish: []string{"8080/tcp"}})
	begin := time.Now()
	if _, err := cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, "http://"+HostPort(t, cli, id, "8080/tcp")+"/", answerTimeout)
	// The process starts after begin, then sleeps delay: an earlier answer is impossible.
	if d := time.Since(begin); d < delay {
		t.Errorf("first answer after %v, want at least START_DELAY %v", d, delay)
	}
}

func TestHealthImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want container.HealthStatus
	}{
		{"healthy", nil, container.Healthy},
		// /app always exists, so UNHEALTHY_FILE=/app makes every probe fail.
		{"unhealthy", []string{"UNHEALTHY_FILE=/app"}, container.Unhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli := Client(t)
			id := Run(t, cli, Spec{Image: HealthImage(t), Env: tt.env, Start: true})
			WaitState(t, cli, id, func(s container.State) bool {
				return s.Health != nil && s.Health.Status == tt.want
			}, 10*time.Second)
		})
	}
}

func TestNetworkNameAndCmd(t *testing.T) {
	t.Parallel()
	cli := Client(t)
	netName := NamePrefix + "net-" + randomHex(t, 4)
	if _, err := cli.NetworkCreate(t.Context(), netName, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{LabelKey: "1"},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := cli.NetworkRemove(ctx, netName, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("remove network: %v", err)
		}
	})

	name := NamePrefix + "named-" + randomHex(t, 4)
	// Cmd reaches the entrypoint: "-healthcheck" with nothing listening exits 1.
	id := Run(t, cli, Spec{Name: name, Image: Image(t), Network: netName, Cmd: []string{"-healthcheck"}, Start: true})
	WaitState(t, cli, id, exited(1), 10*time.Second)

	res, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Container.Name != "/"+name {
		t.Errorf("name = %q, want %q", res.Container.Name, "/"+name)
	}
	if _, ok := res.Container.NetworkSettings.Networks[netName]; !ok {
		t.Errorf("networks = %v, want %s", res.Container.NetworkSettings.Networks, netName)
	}
}
