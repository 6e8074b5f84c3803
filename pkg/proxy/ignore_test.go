package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sleeper/internal/await"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

func defaultAgents(t *testing.T) []string {
	t.Helper()
	agents, err := labels.ParseAgents(DefaultIgnoreAgents())
	if err != nil {
		t.Fatal(err)
	}
	return agents
}

// TestIgnoredRequestToSleepingAppDoesNotWake: a monitor's request (by its
// User-Agent, path or network) to a sleeping app is answered at once with
// 503, Retry-After and the status JSON, and nothing is started.
func TestIgnoredRequestToSleepingAppDoesNotWake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		spec   func(*labels.Spec)
		remote string
		ua     string
		path   string
	}{
		{"default agent Uptime Kuma", nil, "", "Uptime-Kuma/1.23.16", "/"},
		{"default agent UptimeRobot", nil, "", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "/"},
		{"default agent blackbox", nil, "", "Blackbox Exporter/0.25.0", "/"},
		{"label agent", func(s *labels.Spec) { s.IgnoreAgents = []string{"my-checker"} }, "", "My-Checker/2", "/"},
		{"label path", func(s *labels.Spec) { s.IgnorePaths = []string{"/healthz"} }, "", "curl/8", "/healthz/deep"},
		{"label cidr", func(s *labels.Spec) { s.IgnoreCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} }, "192.0.2.9:4000", "curl/8", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			spec := testSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			w := newTestWatcher(t, f, "app", spec)
			h, outs := testHandler()
			h.ignoreAgents = defaultAgents(t)
			r := httptest.NewRequest(http.MethodGet, "http://app.localhost"+tc.path, nil)
			r.Header.Set("User-Agent", tc.ua)
			r.Header.Set("Accept", "text/html") // a browser-like monitor still gets no loading page
			if tc.remote != "" {
				r.RemoteAddr = tc.remote
			}
			rec := serve(h, w, r)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("got %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
			}
			var st statusWire
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.State != "asleep" || st.Name != "app" {
				t.Fatalf("body %q (%v), want the status JSON saying asleep", rec.Body.String(), err)
			}
			await.HoldsFor(t, 300*time.Millisecond, "no wake from an ignored request", func() bool {
				return f.Calls("start", "app") == 0 && w.State() == watcher.StateAsleep
			})
			if got := outs.list(); len(got) != 1 || got[0] != "rejected" {
				t.Fatalf("outcomes %q, want [rejected]", got)
			}
		})
	}
}

// TestIgnoredRequestToAwakeAppIsNotActivity: an ignored request to a ready
// app is proxied but leaves the last activity where it was; an ordinary
// one moves it.
func TestIgnoredRequestToAwakeAppIsNotActivity(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.Update("app", func(c *watcher.Container) { c.Status, c.StartedAt = watcher.StatusRunning, time.Now() })
	w := newTestWatcher(t, f, "app", testSpec())
	for deadline := time.Now().Add(5 * time.Second); w.State() != watcher.StateReady; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
	}
	h, _ := testHandler()
	h.ignoreAgents = defaultAgents(t)
	before := w.LastActivity()
	time.Sleep(5 * time.Millisecond) // activity is stamped at millisecond grain
	r := httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil)
	r.Header.Set("User-Agent", "Uptime-Kuma/1.23.16")
	if rec := serve(h, w, r); rec.Code != http.StatusOK {
		t.Fatalf("ignored request to an awake app: %d %q, want it proxied", rec.Code, rec.Body.String())
	}
	if got := w.LastActivity(); !got.Equal(before) || w.InFlight() != 0 {
		t.Fatalf("last activity %v → %v, in flight %d: the monitor counted as activity", before, got, w.InFlight())
	}
	r = httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0")
	if rec := serve(h, w, r); rec.Code != http.StatusOK {
		t.Fatalf("ordinary request: %d", rec.Code)
	}
	if !w.LastActivity().After(before) {
		t.Fatal("an ordinary request did not count as activity")
	}
}

func TestMatchAgent(t *testing.T) {
	t.Parallel()
	agents := defaultAgents(t)
	for _, tc := range []struct {
		ua   string
		want bool
	}{
		{"Uptime-Kuma/1.23.16", true},
		{"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", true},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) StatusCake", true},
		{"Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64)", true},
		{"Gatus/1.0", true},
		{"HetrixTools Uptime Monitoring Bot. https://hetrix.tools/uptime-monitoring-bot.html", true},
		{"Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", false},
		{"curl/8.5.0", false},
		{"", false},
	} {
		if got := matchAgent(tc.ua, agents); got != tc.want {
			t.Errorf("matchAgent(%q) = %v, want %v", tc.ua, got, tc.want)
		}
	}
}

// TestIgnoreClientBehindTrustedProxy: behind a trusted front proxy the
// client is the last untrusted hop of X-Forwarded-For, not the proxy.
func TestIgnoreClientBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	h := NewHandler(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	spec := &labels.Spec{IgnoreCIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.1, 198.51.100.7")
	if !h.ignored(spec, r) {
		t.Fatal("the monitor behind the trusted proxy is not ignored")
	}
	r.Header.Set("X-Forwarded-For", "198.51.100.7, 203.0.113.1") // the client's own claim first
	if h.ignored(spec, r) {
		t.Fatal("a client chose to be ignored by forging X-Forwarded-For")
	}
	r.RemoteAddr = "192.0.2.1:5000" // not trusted: its header means nothing
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	if h.ignored(spec, r) {
		t.Fatal("an untrusted peer's X-Forwarded-For was believed")
	}
}

// TestIgnoredCheckDoesNotAllocate: the check runs on every request.
func TestIgnoredCheckDoesNotAllocate(t *testing.T) {
	h := NewHandler(Config{IgnoreAgents: defaultAgents(t)})
	spec := &labels.Spec{IgnorePaths: []string{"/healthz"}, IgnoreCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	r := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36")
	if n := testing.AllocsPerRun(100, func() { h.ignored(spec, r) }); n != 0 {
		t.Fatalf("ignored allocates %.0f times per request", n)
	}
}
