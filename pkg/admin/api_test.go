package admin

import (
	"sleeper/internal/watchertest"

	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

func TestContainersJSONShape(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{},
		container("web", app(t)),
		container("api", app(t)),
		container("broken", app(t), "idle_timeout", "soon"),
	)
	code, hdr, body := f.do(t, "GET", "/api/containers", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", code, hdr.Get("Content-Type"))
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	wantKeys := []string{"awake_during", "busy_cpu", "error", "group", "host_sources", "hosts", "id", "idle_timeout",
		"in_window", "last_activity", "last_wake_ms", "memory_freed_bytes", "name", "next_window", "provider",
		"readiness", "sleeps_at", "state"}
	var names []string
	for _, c := range raw {
		if got := slices.Sorted(maps.Keys(c)); !slices.Equal(got, wantKeys) {
			t.Errorf("keys %v, want exactly %v", got, wantKeys)
		}
		names = append(names, c["name"].(string))
	}
	if want := []string{"api", "broken", "web"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want sorted %v", names, want)
	}

	var cs []Container
	if err := json.Unmarshal([]byte(body), &cs); err != nil {
		t.Fatal(err)
	}
	web, broken := cs[2], cs[1]
	if web.ID != "id-web" || web.Provider != "docker" || web.State != "asleep" ||
		!slices.Equal(web.Hosts, []string{"web.localhost"}) || web.IdleTimeout != "1h0m0s" || web.Error != "" ||
		web.Readiness != "http" {
		t.Errorf("web = %+v", web)
	}
	if want := []labels.HostSource{{Host: "web.localhost", Source: "label", Label: "sleeper.hosts"}}; !slices.Equal(web.HostSources, want) {
		t.Errorf("web host_sources %+v, want %+v", web.HostSources, want)
	}
	if web.LastActivity == nil || web.SleepsAt != nil || web.LastWakeMS != nil {
		t.Errorf("web: last_activity %v (want set), sleeps_at %v and last_wake_ms %v (want null)",
			web.LastActivity, web.SleepsAt, web.LastWakeMS)
	}
	if broken.State != StateUnmanaged || !strings.Contains(broken.Error, "idle_timeout") || broken.Readiness != "" ||
		broken.LastActivity != nil || len(broken.Hosts) != 0 {
		t.Errorf("broken = %+v", broken)
	}
	if !strings.Contains(body, `"hosts": []`) || !strings.Contains(body, `"host_sources": []`) {
		t.Errorf("an unmanaged container's hosts must be [] rather than null:\n%s", body)
	}
}

func TestGetContainer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{}, container("web", app(t)))
	tests := []struct {
		path     string
		wantCode int
		wantIn   string
	}{
		{"/api/containers/web", 200, `"name": "web"`},
		{"/api/containers/nope", 404, `nope`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			code, _, body := f.do(t, "GET", tt.path, "")
			if code != tt.wantCode || !strings.Contains(body, tt.wantIn) {
				t.Fatalf("%d %s, want %d containing %q", code, body, tt.wantCode, tt.wantIn)
			}
			if code != 200 {
				apiError(t, body)
			}
		})
	}
}

func TestMutatingAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		token     string // configured
		auth      string // sent
		wantCode  int
		wantError string
	}{
		{"no token configured", "", "Bearer " + testToken, 403, "mutating API disabled: set --admin-token"},
		{"missing", testToken, "", 401, "bearer token"},
		{"wrong", testToken, "Bearer nope", 401, "bearer token"},
		{"longer", testToken, "Bearer " + testToken + "x", 401, "bearer token"},
		{"prefix", testToken, "Bearer " + testToken[:4], 401, "bearer token"},
		{"other scheme", testToken, "Basic " + testToken, 401, "bearer token"},
		{"scheme only", testToken, "Bearer", 401, "bearer token"},
		{"right", testToken, "Bearer " + testToken, 200, ""},
		{"scheme case-insensitive", testToken, "bearer " + testToken, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{Token: tt.token}, container("web", app(t)))
			for _, action := range []string{"sleep", "wake"} {
				code, hdr, body := f.do(t, "POST", "/api/containers/web/"+action, tt.auth)
				if code != tt.wantCode {
					t.Fatalf("%s: status %d (%s), want %d", action, code, body, tt.wantCode)
				}
				if tt.wantError != "" && !strings.Contains(apiError(t, body), tt.wantError) {
					t.Errorf("%s: error %q, want it to contain %q", action, body, tt.wantError)
				}
				if gotWWW := hdr.Get("WWW-Authenticate"); (code == 401) != (gotWWW == "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q with status %d", action, gotWWW, code)
				}
			}
			if tt.wantCode != 200 && f.rt.Calls("start", "")+f.rt.Calls("stop", "") != 0 {
				t.Error("a refused call touched the container")
			}
		})
	}
}

func TestMutatingOnlyManaged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{Token: testToken},
		container("web", app(t)),
		container("broken", app(t), "stop_method", "explode"),
	)
	tests := []struct {
		path   string
		wantIn string
	}{
		{"/api/containers/nope/wake", `unknown container "nope"`},
		{"/api/containers/nope/sleep", `unknown container "nope"`},
		{"/api/containers/broken/wake", `container "broken" is not managed`},
		{"/api/containers/broken/sleep", `container "broken" is not managed`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			code, _, body := f.do(t, "POST", tt.path, "Bearer "+testToken)
			if code != http.StatusNotFound {
				t.Fatalf("status %d (%s), want 404", code, body)
			}
			if msg := apiError(t, body); !strings.Contains(msg, tt.wantIn) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantIn)
			}
		})
	}
}

func TestWakeThenSleep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{Token: testToken}, container("web", app(t)))
	auth := "Bearer " + testToken

	code, _, body := f.do(t, "POST", "/api/containers/web/wake", auth)
	var res ActionResult
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 {
		t.Fatalf("wake: %d %s (%v)", code, body, err)
	}
	if res.Name != "web" || res.State != "ready" || res.WakeMS == nil {
		t.Fatalf("wake result %s, want web ready with wake_ms", body)
	}
	if f.rt.Calls("start", "") != 1 {
		t.Errorf("start called %d times, want 1", f.rt.Calls("start", ""))
	}

	_, _, body = f.do(t, "GET", "/api/containers/web", "")
	var c Container
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if c.State != "ready" || c.SleepsAt == nil || c.LastWakeMS == nil {
		t.Errorf("after wake: %s, want ready with sleeps_at and last_wake_ms", body)
	}
	if left := time.Until(*c.SleepsAt); left < 59*time.Minute || left > time.Hour {
		t.Errorf("sleeps_at %v is %v away, want about the 1h idle timeout", c.SleepsAt, left)
	}

	// Waking a ready container is a no-op that says so.
	code, _, body = f.do(t, "POST", "/api/containers/web/wake", auth)
	if code != 200 || !strings.Contains(body, `"wake_ms": 0`) || f.rt.Calls("start", "") != 1 {
		t.Errorf("second wake: %d %s, start calls %d", code, body, f.rt.Calls("start", ""))
	}

	code, _, body = f.do(t, "POST", "/api/containers/web/sleep", auth)
	if code != 200 || !strings.Contains(body, `"state": "asleep"`) || strings.Contains(body, "wake_ms") {
		t.Fatalf("sleep: %d %s, want 200 asleep", code, body)
	}
	if f.rt.Calls("stop", "") != 1 {
		t.Errorf("stop called %d times, want 1", f.rt.Calls("stop", ""))
	}
}

func TestWakeFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		c        watcher.Container
		startErr error
		wantCode int
		wantIn   string
	}{
		{"start fails", container("web", "http://127.0.0.1:1"), errors.New("no such image"), 502, "web: the app failed to start (wake web: start: no such image)"},
		{"never ready", container("web", deadUpstream(t), "wake_timeout", "300ms"), nil, 504, "web: timed out after 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{Token: testToken}, tt.c)
			f.rt.Behave("web", watchertest.Behaviour{StartErr: tt.startErr})
			code, _, body := f.do(t, "POST", "/api/containers/web/wake", "Bearer "+testToken)
			if code != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", code, body, tt.wantCode)
			}
			if msg := apiError(t, body); !strings.Contains(msg, tt.wantIn) {
				t.Errorf("error %q, want it to contain %q", msg, tt.wantIn)
			}
		})
	}
}

func TestSleepWhileWakingIsConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{Token: testToken}, container("web", deadUpstream(t), "wake_timeout", "30s"))
	w := f.reg.Get("web")
	w.Kick() // a wake that will not finish during the test
	if w.State() != watcher.StateWaking {
		t.Fatalf("state %s after Kick, want waking", w.State())
	}
	code, _, body := f.do(t, "POST", "/api/containers/web/sleep", "Bearer "+testToken)
	if code != http.StatusConflict {
		t.Fatalf("status %d (%s), want 409", code, body)
	}
	if msg := apiError(t, body); !strings.Contains(msg, "web: the app is waking") {
		t.Errorf("error %q", msg)
	}
}

// TestSleepFailureIsBadGateway: a stop the engine refuses is an engine
// failure, 502 like a failed wake, with the engine's error for the operator.
func TestSleepFailureIsBadGateway(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{Token: testToken}, container("web", app(t)))
	auth := "Bearer " + testToken
	if code, _, body := f.do(t, "POST", "/api/containers/web/wake", auth); code != http.StatusOK {
		t.Fatalf("wake: %d %s", code, body)
	}
	f.rt.Behave("web", watchertest.Behaviour{StopErr: errors.New("cannot stop container: permission denied")})
	code, _, body := f.do(t, "POST", "/api/containers/web/sleep", auth)
	if code != http.StatusBadGateway {
		t.Fatalf("sleep with a failing stop: %d %s, want 502", code, body)
	}
	msg := apiError(t, body)
	for _, want := range []string{"web: the app failed to go to sleep", "permission denied"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q, want it to contain %q", msg, want)
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   string
		ok     bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"  Bearer   abc  ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			t.Parallel()
			got, ok := bearerToken(tt.header)
			if got != tt.want || ok != tt.ok {
				t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}
