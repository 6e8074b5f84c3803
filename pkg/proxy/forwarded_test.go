package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// readyHandler is a Handler built from cfg whose one ready container,
// answering app.localhost, is the upstream at url.
func readyHandler(t testing.TB, url string, cfg Config) *Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: readyRuntime(), Log: log})
	t.Cleanup(reg.Close)
	reg.Apply(watcher.Container{ID: "bench", Name: "bench", Status: watcher.StatusRunning, StartedAt: time.Unix(1, 0),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "app.localhost", "sleeper.upstream": url}})
	for deadline := time.Now().Add(5 * time.Second); reg.Get("bench").State() != watcher.StateReady; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the container never became ready")
		}
	}
	cfg.Routes, cfg.MaxHeld, cfg.Log = staticRoutes{reg}, 10, log
	h := NewHandler(cfg)
	t.Cleanup(h.upstream.CloseIdleConnections)
	return h
}

func TestTrustedProxiesForwardedHeaders(t *testing.T) {
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			rw.Header()["Got-"+k] = r.Header.Values(k)
		}
	}))
	t.Cleanup(app.Close)
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8::1")
	if err != nil {
		t.Fatal(err)
	}
	h := readyHandler(t, app.URL, Config{TrustedProxies: trusted})
	front := http.Header{
		"X-Forwarded-For":   {"198.51.100.7"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"app.example.com"},
	}
	tests := []struct {
		name, peer string
		in         http.Header
		xff        string
		proto      string
		host       string
	}{
		{name: "untrusted peer: replaced", peer: "203.0.113.5:4000", in: front,
			xff: "203.0.113.5", proto: "http", host: "app.localhost"},
		{name: "trusted peer: appended and kept", peer: "10.1.2.3:4000", in: front,
			xff: "198.51.100.7, 10.1.2.3", proto: "https", host: "app.example.com"},
		{name: "trusted IPv4-mapped peer", peer: "[::ffff:10.1.2.3]:4000", in: front,
			xff: "198.51.100.7, ::ffff:10.1.2.3", proto: "https", host: "app.example.com"},
		{name: "trusted single IPv6 address", peer: "[2001:db8::1]:4000", in: front,
			xff: "198.51.100.7, 2001:db8::1", proto: "https", host: "app.example.com"},
		{name: "neighbour of a single address: replaced", peer: "[2001:db8::2]:4000", in: front,
			xff: "2001:db8::2", proto: "http", host: "app.localhost"},
		{name: "trusted peer without headers: set", peer: "10.1.2.3:4000", in: http.Header{},
			xff: "10.1.2.3", proto: "http", host: "app.localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil)
			r.RemoteAddr = tc.peer
			for k, v := range tc.in {
				r.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			got := func(k string) string { return strings.Join(rec.Header().Values("Got-"+k), ", ") }
			if rec.Code != 200 || got("X-Forwarded-For") != tc.xff || got("X-Forwarded-Proto") != tc.proto || got("X-Forwarded-Host") != tc.host {
				t.Fatalf("%d: app saw For=%q Proto=%q Host=%q, want %q %q %q", rec.Code,
					got("X-Forwarded-For"), got("X-Forwarded-Proto"), got("X-Forwarded-Host"), tc.xff, tc.proto, tc.host)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := ParseTrustedProxies(" 10.0.0.1/8 ,172.16.0.5,, ::ffff:192.168.1.1, fd00::/8")
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.5/32"),
		netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("fd00::/8"),
	}
	if err != nil || len(got) != len(want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope"} {
		if _, err := ParseTrustedProxies(bad); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(bad, "10.0.0.0/8,")) {
			t.Errorf("ParseTrustedProxies(%q) = %v, want an error naming the value", bad, err)
		}
	}
}
