// Package bench measures sleeper against the real Docker engine. The
// measurements only run with SLEEPER_BENCH=1 (see the scripts beside this
// file); under a plain `go test ./...` they skip, because timing is not a
// pass/fail matter for the test suite.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
)

func benchOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("SLEEPER_BENCH") != "1" {
		t.Skip("measurement: run with SLEEPER_BENCH=1 (bench/*.sh)")
	}
}

func rounds() int {
	if n, err := strconv.Atoi(os.Getenv("SLEEPER_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// getUntilOK polls url on fresh connections every millisecond until a 200.
func getUntilOK(ctx context.Context, url, host string) error {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWakeOverhead compares, alternating, (a) `docker start` then polling the
// app directly until it answers, with (b) one request held by sleeper on the
// stopped container. The app listens 300 ms after start, as in the
// comparison with GoDoxy and Sablier. Overhead = median(b) − median(a).
func TestWakeOverhead(t *testing.T) {
	benchOnly(t)
	s := startSleeperProcess(t)
	cli := dockertest.Client(t)
	name := "wakebench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	host := name + ".localhost"
	id := dockertest.Run(t, cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Env: []string{"START_DELAY=300ms"},
		Labels:  map[string]string{s.prefix + ".enable": "true", s.prefix + ".hosts": host},
		Publish: []string{"8080/tcp"},
	})
	s.waitManaged(t, name)
	ctx := context.Background()
	stop := func() {
		if _, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitState(t, name, "asleep")
	}
	var direct, held []time.Duration
	for range rounds() {
		t0 := time.Now()
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		addr := dockertest.HostPort(t, cli, id, "8080/tcp")
		if err := getUntilOK(ctx, "http://"+addr+"/", ""); err != nil {
			t.Fatal(err)
		}
		direct = append(direct, time.Since(t0))
		s.waitState(t, name, "ready") // sleeper saw the manual start
		stop()

		t0 = time.Now()
		resp, err := s.get(host, "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("held request: %d", resp.StatusCode)
		}
		held = append(held, time.Since(t0))
		stop()
	}
	md, mh := median(direct), median(held)
	fmt.Printf("wake overhead: direct start→answer median %s, held request median %s, overhead %s (rounds %d)\n",
		md.Round(time.Millisecond), mh.Round(time.Millisecond), (mh - md).Round(time.Millisecond), len(held))
	fmt.Printf("  direct: %v\n  held:   %v\n", direct, held)
}
