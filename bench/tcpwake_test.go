package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
)

// echoUntilOK dials addr on fresh connections every millisecond until one
// echoes a probe back. Through docker-proxy the dial always succeeds: only
// the echo says the app is there.
func echoUntilOK(ctx context.Context, addr string) error {
	for {
		if echoOnce(addr, time.Second) == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}

// echoOnce sends a probe on a fresh connection and waits for its echo.
func echoOnce(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return fmt.Errorf("echo %q", buf)
	}
	return nil
}

// TestTCPWakeOverhead is TestWakeOverhead for a TCP-only container behind a
// sleeper.streams listener: (a) `docker start` then echoing through the
// published port every millisecond, against (b) one connection through
// sleeper to the stopped container, timed until its echo. The app listens
// 300 ms after start. Overhead = median(b) − median(a). Each round also
// wakes the same app through sleeper's HTTP front door (a second container
// with a host), so that the two front doors are compared under one load.
func TestTCPWakeOverhead(t *testing.T) {
	benchOnly(t)
	var s *sleeperProcess
	if bin := os.Getenv("SLEEPER_BIN"); bin != "" {
		s = startSleeperBinary(t, bin) // compare another build
	} else {
		s = startSleeperProcess(t)
	}
	cli := dockertest.Client(t)
	name := "tcpwakebench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	listen := freeAddr(t)
	id := dockertest.Run(t, cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Env: []string{"START_DELAY=300ms"},
		Labels:  map[string]string{s.prefix + ".enable": "true", s.prefix + ".streams": listen + ":9000/tcp"},
		Publish: []string{"9000/tcp"},
	})
	s.waitManaged(t, name)
	httpName := name + "-http"
	httpID := dockertest.Run(t, cli, dockertest.Spec{
		Name: httpName, Image: dockertest.Image(t), Env: []string{"START_DELAY=300ms"},
		Labels:  map[string]string{s.prefix + ".enable": "true", s.prefix + ".hosts": httpName + ".localhost"},
		Publish: []string{"8080/tcp"},
	})
	s.waitManaged(t, httpName)
	ctx := context.Background()
	stop := func() {
		if _, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitState(t, name, "asleep")
	}
	var direct, held, directAfter, heldAfter, httpAfter []time.Duration
	for range rounds() {
		t0 := time.Now()
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		addr := dockertest.HostPort(t, cli, id, "9000/tcp")
		if err := echoUntilOK(ctx, addr); err != nil {
			t.Fatal(err)
		}
		answered := time.Now()
		direct = append(direct, answered.Sub(t0))
		directAfter = append(directAfter, answered.Sub(listenedAt(t, cli, id)))
		s.waitState(t, name, "ready")
		stop()

		t0 = time.Now()
		if err := echoOnce(listen, 30*time.Second); err != nil {
			t.Fatalf("through sleeper: %v", err)
		}
		answered = time.Now()
		held = append(held, answered.Sub(t0))
		heldAfter = append(heldAfter, answered.Sub(listenedAt(t, cli, id)))
		stop()

		resp, err := s.get(httpName+".localhost", "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		httpAfter = append(httpAfter, time.Since(listenedAt(t, cli, httpID)))
		if _, err := cli.ContainerStop(ctx, httpID, client.ContainerStopOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitState(t, httpName, "asleep")
	}
	md, mh := median(direct), median(held)
	fmt.Printf("tcp wake overhead: direct start→echo median %s, through sleeper median %s, overhead %s (rounds %d)\n",
		md.Round(time.Millisecond), mh.Round(time.Millisecond), (mh - md).Round(time.Millisecond), len(held))
	// docker start alone varies by hundreds of milliseconds on a busy
	// machine: the time from the app's own "listening" log line to the
	// answer leaves that noise out.
	fmt.Printf("  answered after the app listened: direct median %s, through sleeper median %s; HTTP through sleeper median %s\n",
		median(directAfter).Round(time.Millisecond), median(heldAfter).Round(time.Millisecond), median(httpAfter).Round(time.Millisecond))
	fmt.Printf("  direct: %v\n  held:   %v\n  held after listen: %v\n  HTTP after listen: %v\n", direct, held, heldAfter, httpAfter)
}

// listenedAt is when the test app last logged that its TCP echo listens,
// by its own clock (the host's), to the millisecond.
func listenedAt(t *testing.T, cli *client.Client, id string) time.Time {
	t.Helper()
	rc, err := cli.ContainerLogs(context.Background(), id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "msg=listening") || !strings.Contains(line, "proto=tcp-echo") {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			last = at
		}
	}
	if last.IsZero() {
		t.Fatalf("no listening line in the app's logs:\n%s", out.String())
	}
	return last
}
