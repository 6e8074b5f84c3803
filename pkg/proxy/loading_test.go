package proxy

import (
	"sleeper/internal/watchertest"

	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.* from the current output")

func TestLoadingPageGolden(t *testing.T) {
	t.Parallel()
	h, _ := testHandler()
	page, err := h.loading.get()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	events := []watcher.Event{
		{Type: watcher.EventWaking, Time: t0, Message: "waking app"},
		{Type: watcher.EventStarted, Time: t0.Add(300 * time.Millisecond), Message: "container started"},
	}
	data := newPageData("app", watcher.StateWaking, events, []time.Duration{2 * time.Second, 3 * time.Second, 9 * time.Second}, t0.Add(1200*time.Millisecond))
	data.Path = "/some/path?x=1"
	data.CSS = assetsPath + page.assets.Name("loading.css")
	data.JS = assetsPath + page.assets.Name("loading.js")
	var b strings.Builder
	if err := page.tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "loading.golden.html")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/proxy -run LoadingPageGolden -update)", err)
	}
	if b.String() != string(want) {
		t.Fatalf("loading page differs from %s (rerun with -update if intended):\n%s", golden, b.String())
	}
}

func TestLoadingPageData(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	waking := watcher.Event{Type: watcher.EventWaking, Time: t0, Message: "waking app"}
	cases := []struct {
		name   string
		state  watcher.State
		events []watcher.Event
		recent []time.Duration
		want   pageData
	}{
		{name: "fresh", state: watcher.StateWaking, events: []watcher.Event{waking},
			want: pageData{State: "waking", Step: "waking app", Progress: 5, Elapsed: "1.5 s", ElapsedMS: 1500}},
		{name: "waiting with estimate", state: watcher.StateWaking,
			events: []watcher.Event{waking, {Type: watcher.EventWaitingReady, Time: t0.Add(time.Second), Message: "waiting for the health check"}},
			recent: []time.Duration{1200 * time.Millisecond, 5 * time.Second},
			want: pageData{State: "waking", Step: "waiting for the health check", Progress: 60, Elapsed: "1.5 s", ElapsedMS: 1500,
				EstimateMS: 3100, Estimate: "4s"}},
		{name: "failed", state: watcher.StateError,
			events: []watcher.Event{waking, {Type: watcher.EventError, Time: t0.Add(700 * time.Millisecond), Message: "container exited with code 3"}},
			want: pageData{State: "error", Step: "Could not start it", Error: "container exited with code 3", Progress: 5,
				Elapsed: "0.7 s", ElapsedMS: 700}},
		{name: "stale events of a past wake", state: watcher.StateAsleep,
			events: []watcher.Event{waking, {Type: watcher.EventReady, Time: t0.Add(time.Second), Message: "ready"}},
			want:   pageData{State: "waking", Step: "Waking app", Progress: 5, Elapsed: "0.0 s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := newPageData("app", tc.state, tc.events, tc.recent, t0.Add(1500*time.Millisecond))
			tc.want.Name = "app"
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	s := time.Second
	cases := []struct {
		in     []time.Duration
		median time.Duration
	}{
		{nil, 0},
		{[]time.Duration{300 * time.Millisecond}, 300 * time.Millisecond},
		{[]time.Duration{9 * s, 2 * s, 3 * s}, 3 * s},
		{[]time.Duration{4 * s, 1 * s, 2 * s, 60 * s}, 3 * s},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			t.Parallel()
			if got := median(tc.in); got != tc.median {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.median)
			}
		})
	}
}

func TestLoadingPageServedAndWakeKicked(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	gate := f.hold()
	t.Cleanup(func() { close(gate) })
	w := newTestWatcher(t, f, "app", testSpec())
	h, rec := testHandler()

	// The start is held until the test ends: a page that waited for the
	// wake would never be served.
	resp := serve(h, w, browserRequest("http://app.localhost/some/path?x=1"))
	if resp.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.Code)
	}
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": pageCSP,
	}
	for k, v := range want {
		if got := resp.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Error("the page must not allow other origins")
	}
	body := resp.Body.String()
	for _, s := range []string{"<title>Starting app…</title>", "/some/path?x=1", `role="status"`, `aria-live="polite"`,
		`<button type="button" id="sleeper-retry">`, `<noscript><meta http-equiv="refresh" content="2"></noscript>`, "waking app"} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if w.State() != watcher.StateWaking {
		t.Fatalf("state %s after the page, want waking (Kick)", w.State())
	}
	if got := rec.list(); !slices.Equal(got, []string{"loading_page"}) {
		t.Fatalf("outcomes %v, want [loading_page]", got)
	}
	// Every asset the page links is served.
	for _, m := range regexp.MustCompile(`(?:href|src)="(/\.sleeper/assets/[^"]+)"`).FindAllStringSubmatch(body, -1) {
		if r := serve(h, w, httptest.NewRequest(http.MethodGet, m[1], nil)); r.Code != http.StatusOK {
			t.Errorf("GET %s: %d", m[1], r.Code)
		}
	}
}

func TestLoadingPageEscapes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	gate := f.hold()
	t.Cleanup(func() { close(gate) })
	w := newTestWatcher(t, f, `<script>alert("name")</script>`, testSpec())
	h, _ := testHandler()
	// What a raw client can put on the request line; browsers would encode it.
	r := browserRequest(`http://app.localhost/x`)
	r.URL.Path = `/<script>alert("path")</script>`
	r.URL.RawQuery = `q="><img src=x onerror=alert(1)>`
	body := serve(h, w, r).Body.String()
	for _, raw := range []string{`<script>alert(`, `<img src=x`, `"><img`} {
		if strings.Contains(body, raw) {
			t.Fatalf("page reflects %q raw:\n%s", raw, body)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;path&#34;)&lt;/script&gt;") {
		t.Fatalf("escaped path missing:\n%s", body)
	}
}

// TestServeClassifies checks who gets the page, who is held and who is
// refused while the container sleeps, and that nothing is refused once awake.
func TestServeClassifies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		loadingPage bool
		wakePaths   []string
		req         func() *http.Request
		wantCode    int
		wantBody    string // substring
		wantOutcome string
		wantWake    bool
	}{
		{name: "browser gets the page", loadingPage: true, req: func() *http.Request { return browserRequest("/") },
			wantCode: 200, wantBody: "<!doctype html>", wantOutcome: "loading_page", wantWake: true},
		{name: "curl is held", loadingPage: true, req: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/p", nil)
			r.Header.Set("Accept", "*/*")
			return r
		}, wantCode: 200, wantBody: "hello from app at /p", wantOutcome: "held", wantWake: true},
		{name: "fetch asking for html is held", loadingPage: true, req: func() *http.Request {
			r := browserRequest("/p")
			r.Header.Set("Sec-Fetch-Mode", "cors")
			return r
		}, wantCode: 200, wantBody: "hello from app", wantOutcome: "held", wantWake: true},
		{name: "loading_page=false holds browsers", loadingPage: false, req: func() *http.Request { return browserRequest("/") },
			wantCode: 200, wantBody: "hello from app", wantOutcome: "held", wantWake: true},
		{name: "path outside wake_paths is refused", loadingPage: true, wakePaths: []string{"/api", "/app/"},
			req:      func() *http.Request { return browserRequest("/apix") },
			wantCode: 503, wantBody: "sleeper: app: the app is asleep and this request does not wake it\n", wantOutcome: "rejected"},
		{name: "traversal cannot borrow a wake path", loadingPage: true, wakePaths: []string{"/api"},
			req: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/x", nil)
				r.URL.Path = "/api/../admin"
				return r
			},
			wantCode: 503, wantOutcome: "rejected"},
		{name: "path under wake_paths wakes", loadingPage: true, wakePaths: []string{"/api", "/app/"},
			req:      func() *http.Request { return browserRequest("/app/x") },
			wantCode: 200, wantBody: "<!doctype html>", wantOutcome: "loading_page", wantWake: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			spec := testSpec()
			spec.LoadingPage, spec.WakePaths = tc.loadingPage, tc.wakePaths
			w := newTestWatcher(t, f, "app", spec)
			h, rec := testHandler()
			resp := serve(h, w, tc.req())
			if resp.Code != tc.wantCode || !strings.Contains(resp.Body.String(), tc.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", resp.Code, resp.Body.String(), tc.wantCode, tc.wantBody)
			}
			if got := rec.list(); len(got) != 1 || got[0] != tc.wantOutcome {
				t.Fatalf("outcomes %v, want [%s]", got, tc.wantOutcome)
			}
			if tc.wantCode == 503 && resp.Header().Get("Retry-After") != "1" {
				t.Fatalf("Retry-After %q, want 1 without wake history", resp.Header().Get("Retry-After"))
			}
			if woke := w.State() != watcher.StateAsleep; woke != tc.wantWake {
				t.Fatalf("state %s: woke=%v, want %v", w.State(), woke, tc.wantWake)
			}
		})
	}
}

// TestWakePathsDoNotRestrictAnAwakeContainer: wake_paths only decide who may
// wake it; once ready every path is proxied.
func TestWakePathsDoNotRestrictAnAwakeContainer(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	spec := testSpec()
	spec.WakePaths = []string{"/api"}
	w := newTestWatcher(t, f, "app", spec)
	h, _ := testHandler()
	if resp := serve(h, w, httptest.NewRequest(http.MethodGet, "/api/wake", nil)); resp.Code != 200 {
		t.Fatalf("wake through /api: %d %s", resp.Code, resp.Body.String())
	}
	resp := serve(h, w, browserRequest("/admin"))
	if resp.Code != 200 || resp.Body.String() != "hello from app at /admin" {
		t.Fatalf("awake /admin: %d %q", resp.Code, resp.Body.String())
	}
	if f.Calls("start", "") != 1 {
		t.Fatalf("%d starts, want 1", f.Calls("start", ""))
	}
}

func TestStatusEndpoint(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	resp := serve(h, w, httptest.NewRequest(http.MethodGet, statusPath, nil))
	if resp.Code != 200 || resp.Header().Get("Cache-Control") != "no-store" || resp.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %v", resp.Code, resp.Header())
	}
	if got, want := resp.Body.String(), `{"name":"app","state":"asleep","ready":false,"last_wake_ms":0,"estimate_ms":0,"error":""}`+"\n"; got != want {
		t.Fatalf("asleep status %s, want %s", got, want)
	}
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	body := serve(h, w, httptest.NewRequest(http.MethodGet, statusPath, nil)).Body.String()
	if !strings.Contains(body, `"state":"ready","ready":true`) {
		t.Fatalf("ready status %s", body)
	}
	// The status page never wakes anything and is not refused by wake_paths.
	if resp := serve(h, w, httptest.NewRequest(http.MethodPost, statusPath, nil)); resp.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST status: %d, want 405", resp.Code)
	}
}

func TestStatusReportsError(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.Behave("app", watchertest.Behaviour{ExitOnStart: true})
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	if _, err := w.Wait(context.Background()); err == nil {
		t.Fatal("wake of a container that exits succeeded")
	}
	body := serve(h, w, httptest.NewRequest(http.MethodGet, statusPath, nil)).Body.String()
	if !strings.Contains(body, `"state":"error","ready":false`) || !strings.Contains(body, "exited with code 3") {
		t.Fatalf("error status %s", body)
	}
	// The page a browser gets now shows the reason at once, without script.
	page := serve(h, w, browserRequest("/")).Body.String()
	if !strings.Contains(page, `data-state="error"`) || !strings.Contains(page, "the app exited with code 3") ||
		strings.Contains(page, `id="sleeper-error" class="error" role="alert" hidden`) {
		t.Fatalf("error page:\n%s", page)
	}
}

func TestAssets(t *testing.T) {
	t.Parallel()
	h, _ := testHandler()
	page, err := h.loading.get()
	if err != nil {
		t.Fatal(err)
	}
	css, js := page.assets.Name("loading.css"), page.assets.Name("loading.js")
	for name, re := range map[string]string{css: `^loading\.[0-9a-f]{8}\.css$`, js: `^loading\.[0-9a-f]{8}\.js$`} {
		if !regexp.MustCompile(re).MatchString(name) {
			t.Errorf("hashed name %q does not match %s", name, re)
		}
	}
	w := newTestWatcher(t, newFake(t), "app", testSpec())
	cases := []struct {
		target string
		code   int
		ctype  string
	}{
		{assetsPath + css, 200, "text/css; charset=utf-8"},
		{assetsPath + js, 200, "text/javascript; charset=utf-8"},
		{assetsPath + "loading.css", 404, ""},
		{assetsPath + "loading.html", 404, ""},
		{assetsPath + "../status", 404, ""},
		{assetsPath + "%2e%2e/status", 404, ""},
		{assetsPath + "..%2f" + css, 404, ""},
		{assetsPath + "x/../" + css, 404, ""},
		{assetsPath, 404, ""},
		{ReservedPrefix + "nope", 404, ""},
		{ReservedPrefix, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			resp := serve(h, w, httptest.NewRequest(http.MethodGet, tc.target, nil))
			if resp.Code != tc.code {
				t.Fatalf("GET %s: %d, want %d", tc.target, resp.Code, tc.code)
			}
			if w.State() != watcher.StateAsleep {
				t.Fatalf("GET %s woke the container (%s)", tc.target, w.State())
			}
			if tc.code != 200 {
				return
			}
			if got := resp.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := resp.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control %q", got)
			}
			if resp.Header().Get("X-Content-Type-Options") != "nosniff" || resp.Body.Len() == 0 {
				t.Errorf("headers %v, %d bytes", resp.Header(), resp.Body.Len())
			}
		})
	}
}
