package admin

import (
	"sleeper/internal/watchertest"

	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"sleeper/pkg/labels"
	"sleeper/pkg/metrics"
	"sleeper/pkg/watcher"
)

// TestMetricsFollowRealWakesAndSleeps wires the Prometheus recorder into a
// real registry, as main does, and checks that a wake and a sleep through
// the API move the counters exactly once, and that removal forgets them.
func TestMetricsFollowRealWakesAndSleeps(t *testing.T) {
	t.Parallel()
	rec := metrics.New(metrics.Config{Version: "test"})
	rt := watchertest.NewEngine()
	log := slog.New(slog.DiscardHandler)
	reg := watcher.NewRegistry(watcher.RegistryConfig{
		Runtime: rt, Log: log, Recorder: rec,
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour},
	})
	t.Cleanup(reg.Close)
	rec.Watch(reg)
	c := container("web", app(t))
	rt.Set(c)
	reg.Apply(c)
	srv := httptest.NewServer(NewHandler(Config{
		Registry: reg, Metrics: rec.Handler(log), Wakes: rec, Token: testToken, Log: log,
	}))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv, reg: reg, rt: rt}
	auth := "Bearer " + testToken

	if code, _, body := f.do(t, "POST", "/api/containers/web/wake", auth); code != 200 {
		t.Fatalf("wake: %d %s", code, body)
	}
	if code, _, body := f.do(t, "POST", "/api/containers/web/sleep", auth); code != 200 {
		t.Fatalf("sleep: %d %s", code, body)
	}
	want := `
# HELP sleeper_wakes_total Finished wakes by result (success, timeout, error, cancelled).
# TYPE sleeper_wakes_total counter
sleeper_wakes_total{container="web",engine="",result="error"} 0
sleeper_wakes_total{container="web",engine="",result="success"} 1
sleeper_wakes_total{container="web",engine="",result="timeout"} 0
# HELP sleeper_sleeps_total Containers put to sleep, by stop method and reason (idle, api, external).
# TYPE sleeper_sleeps_total counter
sleeper_sleeps_total{container="web",engine="",method="stop",reason="api"} 1
# HELP sleeper_config_errors 1 while the container's labels are broken and it is not managed.
# TYPE sleeper_config_errors gauge
sleeper_config_errors{container="web",engine=""} 0
`
	if err := testutil.GatherAndCompare(rec.Gatherer(), strings.NewReader(want),
		"sleeper_wakes_total", "sleeper_sleeps_total", "sleeper_config_errors"); err != nil {
		t.Error(err)
	}
	_, _, page := f.do(t, "GET", "/metrics", "")
	for _, line := range []string{
		`sleeper_container_state{container="web",engine="",state="asleep"} 1`,
		`sleeper_container_state{container="web",engine="",state="ready"} 0`,
		`sleeper_active_connections{container="web",engine=""} 0`,
		`sleeper_last_activity_timestamp_seconds{container="web",engine=""} `,
		`sleeper_wake_duration_seconds_count{container="web",engine=""} 1`,
	} {
		if !strings.Contains(page, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if _, _, status := f.do(t, "GET", "/", ""); !strings.Contains(status, `<td class="num">1</td>`) {
		t.Error("status page does not show the one wake")
	}

	reg.Remove("web")
	if _, _, page := f.do(t, "GET", "/metrics", ""); strings.Contains(page, `container="web"`) {
		t.Errorf("series of a removed container remain:\n%s", page)
	}
}
