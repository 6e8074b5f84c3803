package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"sleeper/pkg/watcher"
)

func TestCountersMoveExactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		do     func(r *Recorder)
		metric string
		want   string
	}{
		{
			name: "requests by outcome",
			do: func(r *Recorder) {
				for range 3 {
					r.Request("app", "proxied")
				}
				r.Request("app", "held")
				r.Request("app", "loading_page")
				r.Request("db", "rejected")
				r.Request("db", "error")
				r.Request("db", "error")
			},
			metric: "sleeper_requests_total",
			want: `
# HELP sleeper_requests_total HTTP requests by outcome (proxied, loading_page, held, rejected, error).
# TYPE sleeper_requests_total counter
sleeper_requests_total{container="app",engine="",outcome="error"} 0
sleeper_requests_total{container="app",engine="",outcome="held"} 1
sleeper_requests_total{container="app",engine="",outcome="loading_page"} 1
sleeper_requests_total{container="app",engine="",outcome="proxied"} 3
sleeper_requests_total{container="app",engine="",outcome="rejected"} 0
sleeper_requests_total{container="db",engine="",outcome="error"} 2
sleeper_requests_total{container="db",engine="",outcome="held"} 0
sleeper_requests_total{container="db",engine="",outcome="loading_page"} 0
sleeper_requests_total{container="db",engine="",outcome="proxied"} 0
sleeper_requests_total{container="db",engine="",outcome="rejected"} 1
`,
		},
		{
			name: "an unknown outcome is still counted",
			do: func(r *Recorder) {
				r.Request("app", "teapot")
				r.Request("app", "teapot")
			},
			metric: "sleeper_requests_total",
			want: `
# HELP sleeper_requests_total HTTP requests by outcome (proxied, loading_page, held, rejected, error).
# TYPE sleeper_requests_total counter
sleeper_requests_total{container="app",engine="",outcome="error"} 0
sleeper_requests_total{container="app",engine="",outcome="held"} 0
sleeper_requests_total{container="app",engine="",outcome="loading_page"} 0
sleeper_requests_total{container="app",engine="",outcome="proxied"} 0
sleeper_requests_total{container="app",engine="",outcome="rejected"} 0
sleeper_requests_total{container="app",engine="",outcome="teapot"} 2
`,
		},
		{
			name: "wakes by result",
			do: func(r *Recorder) {
				r.Wake("app", "success", 2*time.Second)
				r.Wake("app", "success", 3*time.Second)
				r.Wake("app", "timeout", time.Minute)
				r.Wake("app", "cancelled", time.Second)
			},
			metric: "sleeper_wakes_total",
			want: `
# HELP sleeper_wakes_total Finished wakes by result (success, timeout, error, cancelled).
# TYPE sleeper_wakes_total counter
sleeper_wakes_total{container="app",engine="",result="cancelled"} 1
sleeper_wakes_total{container="app",engine="",result="error"} 0
sleeper_wakes_total{container="app",engine="",result="success"} 2
sleeper_wakes_total{container="app",engine="",result="timeout"} 1
`,
		},
		{
			name: "sleeps by method and reason",
			do: func(r *Recorder) {
				r.Sleep("app", "stop", "idle")
				r.Sleep("app", "stop", "idle")
				r.Sleep("app", "pause", "api")
				r.Sleep("app", "", "external")
			},
			metric: "sleeper_sleeps_total",
			want: `
# HELP sleeper_sleeps_total Containers put to sleep, by stop method and reason (idle, api, external).
# TYPE sleeper_sleeps_total counter
sleeper_sleeps_total{container="app",engine="",method="pause",reason="api"} 1
sleeper_sleeps_total{container="app",engine="",method="stop",reason="idle"} 2
sleeper_sleeps_total{container="app",engine="",method="unknown",reason="external"} 1
`,
		},
		{
			name: "held is the last count reported",
			do: func(r *Recorder) {
				r.Held("app", 1)
				r.Held("app", 7)
				r.Held("app", 4)
			},
			metric: "sleeper_held_requests",
			want: `
# HELP sleeper_held_requests Requests waiting for a wake right now.
# TYPE sleeper_held_requests gauge
sleeper_held_requests{container="app",engine=""} 4
`,
		},
		{
			name: "config errors follow the last report",
			do: func(r *Recorder) {
				r.ConfigError("good", false)
				r.ConfigError("bad", false)
				r.ConfigError("bad", true)
				r.ConfigError("fixed", true)
				r.ConfigError("fixed", false)
			},
			metric: "sleeper_config_errors",
			want: `
# HELP sleeper_config_errors 1 while the container's labels are broken and it is not managed.
# TYPE sleeper_config_errors gauge
sleeper_config_errors{container="bad",engine=""} 1
sleeper_config_errors{container="fixed",engine=""} 0
sleeper_config_errors{container="good",engine=""} 0
`,
		},
		{
			name: "event stream reconnects",
			do: func(r *Recorder) {
				r.Reconnect()
				r.Reconnect()
			},
			metric: "sleeper_docker_event_reconnects_total",
			want: `
# HELP sleeper_docker_event_reconnects_total Times the Docker event stream was re-established after a loss.
# TYPE sleeper_docker_event_reconnects_total counter
sleeper_docker_event_reconnects_total 2
`,
		},
		{
			name:   "docker engine down until it first answers",
			do:     func(r *Recorder) { r.DockerUp("", false) },
			metric: "sleeper_docker_up",
			want: `
# HELP sleeper_docker_up 1 while the Docker engine answers, 0 before it first does and while it is unreachable.
# TYPE sleeper_docker_up gauge
sleeper_docker_up{engine=""} 0
`,
		},
		{
			name:   "docker engine up, down, up",
			do:     func(r *Recorder) { r.DockerUp("", true); r.DockerUp("", false); r.DockerUp("", true) },
			metric: "sleeper_docker_up",
			want: `
# HELP sleeper_docker_up 1 while the Docker engine answers, 0 before it first does and while it is unreachable.
# TYPE sleeper_docker_up gauge
sleeper_docker_up{engine=""} 1
`,
		},
		{
			name: "several engines, one down",
			do: func(r *Recorder) {
				r.DockerUp("local", false)
				r.DockerUp("nas", false)
				r.DockerUp("local", true)
			},
			metric: "sleeper_docker_up",
			want: `
# HELP sleeper_docker_up 1 while the Docker engine answers, 0 before it first does and while it is unreachable.
# TYPE sleeper_docker_up gauge
sleeper_docker_up{engine="local"} 1
sleeper_docker_up{engine="nas"} 0
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRecorder(t)
			tt.do(r)
			if err := testutil.GatherAndCompare(r.Gatherer(), strings.NewReader(tt.want), tt.metric); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWakeDurationOnlySuccess(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	r.Wake("app", "success", 1500*time.Millisecond)
	r.Wake("app", "success", 30*time.Millisecond)
	r.Wake("app", "timeout", time.Minute)
	r.Wake("app", "error", time.Second)
	h := gatherOne(t, r, "sleeper_wake_duration_seconds", "app").GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Errorf("sample count = %d, want 2 (successful wakes only)", h.GetSampleCount())
	}
	if got := h.GetSampleSum(); got < 1.529 || got > 1.531 {
		t.Errorf("sample sum = %v, want 1.53", got)
	}
	if got := r.Wakes("app"); got != 2 {
		t.Errorf("Wakes = %d, want 2", got)
	}
	if got := r.Wakes("nobody"); got != 0 {
		t.Errorf("Wakes(unknown) = %d, want 0", got)
	}
}

func TestStateOneHot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		moves []watcher.State
		want  watcher.State
	}{
		{"fresh container is asleep", nil, watcher.StateAsleep},
		{"waking", []watcher.State{watcher.StateWaking}, watcher.StateWaking},
		{"woke", []watcher.State{watcher.StateWaking, watcher.StateReady}, watcher.StateReady},
		{"failed wake", []watcher.State{watcher.StateWaking, watcher.StateError}, watcher.StateError},
		{"full cycle", []watcher.State{
			watcher.StateWaking, watcher.StateReady, watcher.StateStopping, watcher.StateAsleep,
		}, watcher.StateAsleep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRecorder(t)
			r.ConfigError("app", false)
			from := watcher.StateAsleep
			for _, to := range tt.moves {
				r.State("app", from, to)
				from = to
			}
			got := stateValues(t, r, "app")
			if len(got) != len(watcher.States()) {
				t.Fatalf("got %d state series, want one per state (%d): %v", len(got), len(watcher.States()), got)
			}
			for _, st := range watcher.States() {
				want := 0.0
				if st == tt.want {
					want = 1
				}
				if got[st.String()] != want {
					t.Errorf("state %s = %v, want %v (all: %v)", st, got[st.String()], want, got)
				}
			}
		})
	}
}

func TestBrokenContainerHasNoState(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	r.ConfigError("bad", true)
	if got := stateValues(t, r, "bad"); len(got) != 0 {
		t.Errorf("broken container has state series %v, want none", got)
	}
	r.ConfigError("bad", false)
	if got := stateValues(t, r, "bad"); got["asleep"] != 1 {
		t.Errorf("fixed container states = %v, want asleep", got)
	}
}

func TestAsleepSeconds(t *testing.T) {
	t.Parallel()
	r, clk := newTestRecorder(t)
	r.ConfigError("app", false) // asleep from here
	clk.advance(10 * time.Second)
	r.State("app", watcher.StateAsleep, watcher.StateWaking)
	clk.advance(5 * time.Second)
	r.State("app", watcher.StateWaking, watcher.StateReady)
	clk.advance(7 * time.Second)
	r.State("app", watcher.StateReady, watcher.StateStopping)
	r.State("app", watcher.StateStopping, watcher.StateAsleep)
	clk.advance(3 * time.Second)
	m := gatherOne(t, r, "sleeper_asleep_seconds_total", "app")
	if got := m.GetCounter().GetValue(); got != 13 {
		t.Errorf("asleep seconds = %v, want 13 (10 before the wake + 3 of the current stretch)", got)
	}
	clk.advance(2 * time.Second)
	m = gatherOne(t, r, "sleeper_asleep_seconds_total", "app")
	if got := m.GetCounter().GetValue(); got != 15 {
		t.Errorf("asleep seconds = %v, want 15: the current stretch grows at scrape time", got)
	}
}

func TestScrapeTimeFromSource(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	last := time.Date(2026, 11, 1, 11, 59, 30, 500_000_000, time.UTC)
	r.Watch(fakeSource{
		{Name: "app", Managed: true, InFlight: 3, LastActivity: last},
		{Name: "bad", Managed: false, Error: "bad label"},
	})
	active := gatherOne(t, r, "sleeper_active_connections", "app")
	if got := active.GetGauge().GetValue(); got != 3 {
		t.Errorf("active connections = %v, want 3", got)
	}
	ts := gatherOne(t, r, "sleeper_last_activity_timestamp_seconds", "app")
	if got, want := ts.GetGauge().GetValue(), float64(last.UnixMilli())/1000; got != want {
		t.Errorf("last activity = %v, want %v", got, want)
	}
	if n := countSeries(t, r, "bad"); n != 0 {
		t.Errorf("unmanaged container has %d scrape-time series, want 0", n)
	}
}

func TestUnmanagedHasNoState(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	// Labels that parse (ConfigError false) but a route conflict or a
	// dependency cycle: the registry lists it as not managed.
	r.ConfigError("loser", false)
	r.ConfigError("app", false)
	r.Watch(fakeSource{
		{Name: "app", Managed: true, LastActivity: time.Now()},
		{Name: "loser", Managed: false, Error: "host app.localhost is already claimed by container app"},
	})
	if got := stateValues(t, r, "loser"); len(got) != 0 {
		t.Errorf("unmanaged container has state series %v, want none", got)
	}
	if got := stateValues(t, r, "app"); got["asleep"] != 1 {
		t.Errorf("managed container states = %v, want asleep", got)
	}
}

func TestForgetRemovesEverySeries(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	for _, name := range []string{"app", "other"} {
		exercise(r, name)
	}
	if countSeries(t, r, "app") == 0 {
		t.Fatal("no series for app before Forget")
	}
	r.Forget("app")
	if n := countSeries(t, r, "app"); n != 0 {
		t.Fatalf("%d series left for app after Forget", n)
	}
	if countSeries(t, r, "other") == 0 {
		t.Fatal("Forget(app) removed other's series")
	}
	// Late calls from requests that were in flight must not bring it back.
	r.Request("app", "error")
	r.Request("app", "teapot")
	r.Held("app", 0)
	r.Wake("app", "cancelled", time.Second)
	r.Sleep("app", "stop", "idle")
	r.State("app", watcher.StateReady, watcher.StateAsleep)
	if n := countSeries(t, r, "app"); n != 0 {
		t.Fatalf("late calls recreated %d series for a forgotten container", n)
	}
	// A recreate (same name, Apply again) brings fresh, zeroed series.
	r.ConfigError("app", false)
	r.Request("app", "proxied")
	m := gatherLabeled(t, r, "sleeper_requests_total", "app", "outcome", "proxied")
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("requests after recreate = %v, want 1 (a fresh counter)", got)
	}
}

func TestRequestAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	r, _ := newTestRecorder(t)
	r.ConfigError("app", false)
	allocs := testing.AllocsPerRun(1000, func() { r.Request("app", "proxied") })
	if allocs != 0 {
		t.Errorf("Request allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkRequest(b *testing.B) {
	r := New(Config{Version: "bench"})
	r.ConfigError("app", false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Request("app", "proxied")
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	r.Watch(fakeSource{{Name: "app", Managed: true, LastActivity: time.Now()}})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				name := []string{"app", "db"}[(i+j)%2]
				r.Request(name, "proxied")
				r.Held(name, j)
				r.State(name, watcher.StateAsleep, watcher.StateWaking)
				r.Wake(name, "success", time.Millisecond)
				if j%50 == 0 {
					r.Forget(name)
					r.ConfigError(name, false)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if _, err := r.Gatherer().Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func TestHandlerServesText(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	r.Request("app", "proxied")
	srv := httptest.NewServer(r.Handler(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`sleeper_requests_total{container="app",engine="",outcome="proxied"} 1`,
		`sleeper_build_info{goversion="go`,
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
