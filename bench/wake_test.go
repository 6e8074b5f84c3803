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
	"sync"
	"sync/atomic"
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
	direct, held := wakeRounds(t, s, cli, wakeRound{id: id, name: name, host: host, directPath: "/"})
	md, mh := median(direct), median(held)
	fmt.Printf("wake overhead: direct start→answer median %s, held request median %s, overhead %s (rounds %d)\n",
		md.Round(time.Millisecond), mh.Round(time.Millisecond), (mh - md).Round(time.Millisecond), len(held))
	fmt.Printf("  direct: %v\n  held:   %v\n", direct, held)
}

// wakeRound names the container a wake-overhead measurement runs on, and
// the path its direct half polls until it answers 200.
type wakeRound struct {
	id, name, host, directPath string
}

// wakeRounds alternates the two halves of a wake-overhead measurement for
// rounds(): "direct" is docker start, then polling the app's published port
// every millisecond until directPath answers 200; "held" is one request
// through sleeper to the stopped container, timed to its answer.
func wakeRounds(t *testing.T, s *sleeperProcess, cli *client.Client, r wakeRound) (direct, held []time.Duration) {
	ctx := context.Background()
	stop := func() {
		if _, err := cli.ContainerStop(ctx, r.id, client.ContainerStopOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitState(t, r.name, "asleep")
	}
	for range rounds() {
		t0 := time.Now()
		if _, err := cli.ContainerStart(ctx, r.id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		addr := dockertest.HostPort(t, cli, r.id, "8080/tcp")
		if err := getUntilOK(ctx, "http://"+addr+r.directPath, ""); err != nil {
			t.Fatal(err)
		}
		direct = append(direct, time.Since(t0))
		s.waitState(t, r.name, "ready") // sleeper saw the manual start
		stop()

		t0 = time.Now()
		resp, err := s.get(r.host, "/")
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
	return direct, held
}

// TestHerd5000 holds 5,000 concurrent requests on one sleeping container
// and reports: all answered by the app, the number of starts, the time to
// the last answer, and sleeper's resident memory at the peak.
func TestHerd5000(t *testing.T) {
	benchOnly(t)
	s := startSleeperProcess(t, "--max-held", "10000")
	cli := dockertest.Client(t)
	name := "herdbench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	host := name + ".localhost"
	id := dockertest.Run(t, cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Env: []string{"START_DELAY=300ms", "APP_NAME=" + name},
		Labels:  map[string]string{s.prefix + ".enable": "true", s.prefix + ".hosts": host},
		Publish: []string{"8080/tcp"},
	})
	s.waitManaged(t, name)
	starts, stop := dockertest.Starts(context.Background(), cli, id)
	defer stop()
	const n = 5000
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}, Timeout: time.Minute}
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	var peak atomic.Int64
	var firstErr atomic.Value
	base, _ := procStat(t, s.cmd.Process.Pid)
	t0 := time.Now()
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.addr+"/", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == 200 && string(b) == "hello from "+name+"\n" {
				ok.Add(1)
			} else {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q", resp.StatusCode, b))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
			if rss, _ := procStat(t, s.cmd.Process.Pid); rss > peak.Load() {
				peak.Store(rss)
			}
		}
	}
	elapsed := time.Since(t0)
	time.Sleep(300 * time.Millisecond) // let a (wrong) second start event arrive
	fmt.Printf("herd: %d concurrent held requests: %d answered by the app, %d failed, %d start(s), last answer after %s, peak RSS %.1f MB (%.1f MB before), %.1f KB per held request\n",
		n, ok.Load(), bad.Load(), starts(), elapsed.Round(time.Millisecond), float64(peak.Load())/1e6,
		float64(base)/1e6, float64(peak.Load()-base)/n/1e3)
	if e := firstErr.Load(); e != nil {
		t.Errorf("first failure: %v", e)
	}
}
