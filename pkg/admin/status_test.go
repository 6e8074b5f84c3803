package admin

import (
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// wakeCounter is a fixed WakeCounter.
type wakeCounter map[string]uint64

func (w wakeCounter) Wakes(name string) uint64 { return w[name] }

func TestStatusPage(t *testing.T) {
	t.Parallel()
	evil := "<script>alert(1)</script>"
	f := newFixture(t, Config{Wakes: wakeCounter{"web": 42}, Version: "v1.2.3"},
		container("web", app(t)),
		// Names and error texts come from labels: both must be escaped.
		container(evil, app(t), "hosts", "evil.localhost", "stop_method", evil),
	)
	code, hdr, body := f.do(t, "GET", "/", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, content type %q", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`<noscript><meta http-equiv="refresh" content="5"></noscript>`,
		`<script src="/static/status.js" defer></script>`,
		"<th>Wakes</th>",
		"<th>Ready when</th><th>Wakes</th>",
		`<td>http</td><td class="num">42</td>`,
		"web.localhost",
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"unmanaged",
		"v1.2.3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// The one script is the page's own file: no inline code, no other
	// origin, and the CSP says so to the browser.
	if strings.Count(body, "<script") != 1 || strings.Contains(body, "<script>") || strings.Contains(body, "http://") && strings.Contains(body, "src=") {
		t.Errorf("status page has an inline script or an external asset:\n%s", body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, "data-action") {
		t.Error("wake and sleep buttons without --admin-token: they could only answer 403")
	}
	for _, p := range []string{"/static/status.js", "/static/status.css"} {
		if code, _, asset := f.do(t, "GET", p, ""); code != 200 || len(asset) == 0 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	if code, _, static := f.do(t, "GET", "/static/status.css", ""); code != 200 || !strings.Contains(static, "prefers-color-scheme: dark") {
		t.Errorf("stylesheet: %d", code)
	}
}

// TestStatusPageButtons: with --admin-token each managed container has a
// wake and a sleep button; an unmanaged one has none.
func TestStatusPageButtons(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{Token: "tok"}, container("web", app(t)), container("broken", app(t), "port", "x"))
	_, _, body := f.do(t, "GET", "/", "")
	for _, want := range []string{
		"<th>Actions</th>",
		`<button type="button" data-action="wake" data-name="web">Wake</button>`,
		`<button type="button" data-action="sleep" data-name="web">Sleep</button>`,
		`<form id="token-form" hidden>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `data-name="broken"`) {
		t.Error("buttons on an unmanaged container")
	}
}

func TestStatusPageWithoutWakes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	_, _, body := f.do(t, "GET", "/", "")
	if strings.Contains(body, "<th>Wakes</th>") {
		t.Error("wakes column without a WakeCounter")
	}
	if !strings.Contains(body, "No container carries the enable label yet.") {
		t.Error("empty table has no explanation")
	}
}

func TestSleepsIn(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ready := watcher.Info{Managed: true, State: watcher.StateReady, IdleTimeout: 15 * time.Minute}
	tests := []struct {
		name string
		info func() watcher.Info
		want string
	}{
		{"asleep", func() watcher.Info { return watcher.Info{Managed: true} }, "—"},
		{"unmanaged", func() watcher.Info { return watcher.Info{} }, "—"},
		{"ready", func() watcher.Info {
			i := ready
			i.SleepsAt = now.Add(90*time.Second + 400*time.Millisecond)
			return i
		}, "1m30s"},
		{"overdue", func() watcher.Info { i := ready; i.SleepsAt = now.Add(-time.Second); return i }, "now"},
		{"busy", func() watcher.Info { i := ready; i.SleepsAt = now.Add(time.Minute); i.InFlight = 1; return i }, "busy"},
		{"never", func() watcher.Info { i := ready; i.IdleTimeout = 0; return i }, "never"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := sleepsIn(tt.info(), now); got != tt.want {
				t.Errorf("sleepsIn = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatWake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "—"},
		{340 * time.Millisecond, "340 ms"},
		{2345 * time.Millisecond, "2.3 s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := formatWake(tt.d); got != tt.want {
				t.Errorf("formatWake(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}
