package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"sleeper/pkg/labels"
)

func TestClassifyBrowserNavigation(t *testing.T) {
	t.Parallel()
	chrome := "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	cases := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		{"chrome navigation", "GET", map[string]string{"Accept": chrome, "Sec-Fetch-Mode": "navigate"}, true},
		{"old browser without Sec-Fetch", "GET", map[string]string{"Accept": chrome}, true},
		{"HEAD", "HEAD", map[string]string{"Accept": "text/html"}, true},
		{"html with quality", "GET", map[string]string{"Accept": "application/json, text/html;q=0.9"}, true},
		{"spaces and case", "GET", map[string]string{"Accept": " TEXT/HTML ; charset=utf-8"}, true},
		{"navigate in any case", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "Navigate"}, true},
		{"html refused with q=0", "GET", map[string]string{"Accept": "text/html;q=0, */*"}, false},
		{"html refused with q=0.0", "GET", map[string]string{"Accept": "text/html; q=0.0"}, false},
		{"lookalike type", "GET", map[string]string{"Accept": "text/htmlx"}, false},
		{"curl", "GET", map[string]string{"Accept": "*/*"}, false},
		{"text wildcard", "GET", map[string]string{"Accept": "text/*"}, false},
		{"no Accept", "GET", nil, false},
		{"json API", "GET", map[string]string{"Accept": "application/json"}, false},
		{"POST form", "POST", map[string]string{"Accept": chrome, "Sec-Fetch-Mode": "navigate"}, false},
		{"fetch asking for html", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, false},
		{"no-cors subresource", "GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "no-cors"}, false},
		{"websocket", "GET", map[string]string{"Accept": "text/html", "Connection": "Upgrade", "Upgrade": "websocket"}, false},
		{"connection upgrade token", "GET", map[string]string{"Accept": "text/html", "Connection": "keep-alive, upgrade"}, false},
		{"upgrade header alone", "GET", map[string]string{"Accept": "text/html", "Upgrade": "h2c"}, false},
		{"keep-alive is no upgrade", "GET", map[string]string{"Accept": "text/html", "Connection": "keep-alive"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, "http://app.localhost/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if got := isBrowserNavigation(r); got != tc.want {
				t.Fatalf("isBrowserNavigation = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClassifySeveralAcceptHeaders(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Accept", "application/json")
	r.Header.Add("Accept", "text/html")
	if !isBrowserNavigation(r) {
		t.Fatal("text/html in a second Accept header was missed")
	}
}

func TestClassifyMayWake(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		wakePaths []string
		path      string
		want      bool
	}{
		{"no wake_paths: everything", nil, "/anything", true},
		{"exact prefix", []string{"/api"}, "/api", true},
		{"under prefix", []string{"/api"}, "/api/x/y", true},
		{"prefix with trailing slash of the path", []string{"/api"}, "/api/", true},
		{"not a segment match", []string{"/api"}, "/apix", false},
		{"elsewhere", []string{"/api"}, "/admin", false},
		{"root path", []string{"/api"}, "/", false},
		{"slash prefix is a string prefix", []string{"/app/"}, "/app/x", true},
		{"slash prefix needs the slash", []string{"/app/"}, "/app", false},
		{"no slash: whole segments only", []string{"/img-"}, "/img-1.png", false},
		{"root prefix takes all", []string{"/"}, "/whatever", true},
		{"second prefix", []string{"/api", "/login"}, "/login", true},
		{"dot segments are resolved", []string{"/api"}, "/api/../admin", false},
		{"dot segments inside", []string{"/api"}, "/x/../api/v1", true},
		{"doubled slashes", []string{"/api/"}, "//api//v1", true},
		{"empty path", []string{"/"}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := &labels.Spec{WakePaths: tc.wakePaths}
			if got := mayWake(spec, tc.path); got != tc.want {
				t.Fatalf("mayWake(%v, %q) = %v, want %v", tc.wakePaths, tc.path, got, tc.want)
			}
		})
	}
}
