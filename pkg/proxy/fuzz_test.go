package proxy

import (
	"net/http"
	"strings"
	"testing"

	"sleeper/pkg/labels"
)

// FuzzNormalizeHost: any Host header gives a key that is lower-case, has no
// port or trailing dot, and normalizing it again changes nothing.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"app.localhost", "APP.LocalHost.:8080", "[::1]:80", "[::1", "a:b:c", "", ".", ":", "x.y."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := normalizeHost(h)
		if strings.ContainsAny(got, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("normalizeHost(%q) = %q, not lower-case", h, got)
		}
		// A name, upper-cased and with a trailing dot and a port, routes
		// like the name itself.
		if name := strings.ToLower(h); isPlainName(name) {
			if n := normalizeHost(strings.ToUpper(name) + ".:8080"); n != name {
				t.Fatalf("normalizeHost(%q) = %q, want %q", strings.ToUpper(name)+".:8080", n, name)
			}
		}
	})
}

// FuzzClassify: the browser/wake classification never panics, never gives
// the loading page to an Upgrade or a non-GET/HEAD, and wake_paths never lets
// a path that does not start with a prefix wake.
func FuzzClassify(f *testing.F) {
	f.Add("GET", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "", "navigate", "/api/x", "/api")
	f.Add("POST", "text/html", "websocket", "", "/apix", "/api")
	f.Add("HEAD", "text/html;q=0", "", "cors", "/", "/")
	f.Fuzz(func(t *testing.T, method, accept, upgrade, mode, path, prefix string) {
		r, err := http.NewRequest(http.MethodGet, "http://app.localhost/", nil)
		if err != nil {
			t.Skip()
		}
		r.Method = method
		r.Header.Set("Accept", accept)
		if upgrade != "" {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", upgrade)
		}
		if mode != "" {
			r.Header.Set("Sec-Fetch-Mode", mode)
		}
		nav := isBrowserNavigation(r)
		if nav && (method != http.MethodGet && method != http.MethodHead) {
			t.Fatalf("%s request classified as a browser navigation", method)
		}
		if nav && upgrade != "" {
			t.Fatal("an Upgrade request classified as a browser navigation")
		}
		if !strings.HasPrefix(prefix, "/") {
			return
		}
		spec := &labels.Spec{WakePaths: []string{prefix}}
		if mayWake(spec, path) && !strings.HasPrefix(cleanPath(path), strings.TrimSuffix(prefix, "/")) {
			t.Fatalf("path %q may wake with wake_paths %q", path, prefix)
		}
	})
}

// isPlainName reports whether s is a non-empty run of [a-z0-9.-] not ending in a dot.
func isPlainName(s string) bool {
	if s == "" || strings.HasSuffix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
