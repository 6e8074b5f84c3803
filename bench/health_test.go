package bench

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"sleeper/internal/dockertest"
)

// TestHealthWakeOverhead is TestWakeOverhead for an app with a health check
// of 30 s interval whose test names a URL: the app listens 300 ms after
// start and its /healthz passes 1 s after that. (a) `docker start`, then
// polling /healthz directly until 200; (b) one request held by sleeper.
// Overhead = median(b) − median(a). Before sleeper followed health URLs
// itself, (b) waited for the engine's first probe, one interval (30 s) after
// the start.
func TestHealthWakeOverhead(t *testing.T) {
	benchOnly(t)
	s := startSleeperProcess(t)
	cli := dockertest.Client(t)
	name := "hcbench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	host := name + ".localhost"
	id := dockertest.Run(t, cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Env: []string{"START_DELAY=300ms", "HEALTHY_AFTER=1s"},
		Labels:  map[string]string{s.prefix + ".enable": "true", s.prefix + ".hosts": host},
		Publish: []string{"8080/tcp"},
		Healthcheck: &container.HealthConfig{
			Test:     []string{"CMD", "/app", "-healthcheck", "http://localhost:8080/healthz"},
			Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3,
		},
	})
	s.waitManaged(t, name)
	direct, held := wakeRounds(t, s, cli, wakeRound{id: id, name: name, host: host, directPath: "/healthz"})
	md, mh := median(direct), median(held)
	fmt.Printf("health-check wake overhead: direct start→healthy median %s, held request median %s, overhead %s (rounds %d, health interval 30s)\n",
		md.Round(time.Millisecond), mh.Round(time.Millisecond), (mh - md).Round(time.Millisecond), len(held))
	fmt.Printf("  direct: %v\n  held:   %v\n", direct, held)
}
