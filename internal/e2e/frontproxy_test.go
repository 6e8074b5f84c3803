package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"sleeper/internal/dockertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// Each test puts a real front proxy before sleeper (frontproxy_harness_test.go)
// and an app that carries only the enable label plus the labels it would
// carry for that proxy anyway: sleeper must find its host there, wake it for
// a held API request, stream the loading page's events live, pass an
// Upgrade through, and hand the app the client's address and scheme.

func TestBehindCaddy(t *testing.T) {
	t.Parallel()
	// caddy-docker-proxy's site label, the only host the app names.
	checkBehindProxy(t, startCaddy, func(host string) map[string]string {
		return map[string]string{"caddy": "https://" + host + ":443", "caddy.reverse_proxy": "{{upstreams 8080}}"}
	}, labels.SourceCaddy, "caddy")
}

func TestBehindNginx(t *testing.T) {
	t.Parallel()
	// nginx has no labels; this app is one labelled for Traefik.
	checkBehindProxy(t, startNginx, func(host string) map[string]string {
		return map[string]string{"traefik.http.routers.web.rule": "Host(`" + host + "`) && PathPrefix(`/`)"}
	}, labels.SourceTraefik, "traefik.http.routers.web.rule")
}

func TestBehindTraefik(t *testing.T) {
	t.Parallel()
	checkBehindProxy(t, startTraefik, func(host string) map[string]string {
		return map[string]string{
			"traefik.http.routers.web.rule":    "Host(`other.proxy.test`) || Host(`" + host + "`)",
			"traefik.http.routers.web.service": "sleeper",
		}
	}, labels.SourceTraefik, "traefik.http.routers.web.rule")
}

type proxyStarter func(t *testing.T, s *stack, hosts []string) *frontProxy

func checkBehindProxy(t *testing.T, start proxyStarter, foreign func(host string) map[string]string, source, label string) {
	s := startSleeper(t, stackOptions{
		hostsFrom:      []string{labels.SourceTraefik, labels.SourceCaddy},
		trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	name := uniqueName(t, "fp")
	host := name + ".proxy.test"
	fp := start(t, s, []string{host})

	lbl := s.labels()
	maps.Copy(lbl, foreign(host))
	// START_DELAY makes every wake take seconds, so "the first event came
	// before the wake ended" tells a live stream from a buffered one.
	dockertest.Run(t, s.cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Labels: lbl,
		Env: []string{"START_DELAY=3s", "APP_NAME=" + name}, Publish: []string{"8080/tcp"},
	})
	w := s.watcher(name)
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	hs := w.Info().HostSources
	if !slices.ContainsFunc(hs, func(h labels.HostSource) bool {
		return h.Host == host && h.Source == source && h.Label == label
	}) {
		t.Fatalf("host sources %+v, want %s from %s (%s)", hs, host, label, source)
	}
	c := fp.client()

	checkLiveEvents(t, s, fp, c, name, host)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Sleep(ctx, "test"); err != nil {
		t.Fatalf("sleep: %v", err)
	}
	s.waitState(name, watcher.StateAsleep, 30*time.Second)
	checkHeldForwarded(t, fp, c, host)
	checkUpgrade(t, fp, host)
}

// checkLiveEvents opens the loading page of the sleeping app through the
// proxy, which starts the wake, then its event stream: the first event
// must arrive while the wake still runs (a proxy that buffers would
// deliver everything at the end), and the stream must end on ready, after
// which the page lands on the app.
func checkLiveEvents(t *testing.T, s *stack, fp *frontProxy, c *http.Client, name, host string) {
	t.Helper()
	resp, body := fpGet(t, c, fp.url(host, "/"), "text/html")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "hello from") {
		t.Fatalf("%s: GET / of a sleeping app: status %d body %.200q, want the loading page", fp.name, resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fp.url(host, "/.sleeper/events"), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: events: %v", fp.name, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("%s: events: status %d, content type %q", fp.name, resp.StatusCode, ct)
	}
	br := bufio.NewReader(resp.Body)
	first := true
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: the event stream ended without a ready event: %v", fp.name, err)
		}
		data, ok := strings.CutPrefix(line, "data:")
		if !ok {
			continue
		}
		if first {
			first = false
			if st := s.reg.Get(name).State(); st == watcher.StateReady {
				t.Fatalf("%s: the first event %q arrived after the wake had finished: the proxy buffered the stream", fp.name, data)
			}
		}
		var ev struct{ Type string }
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("%s: event %q: %v", fp.name, data, err)
		}
		if ev.Type == string(watcher.EventReady) {
			break
		}
		if ev.Type == string(watcher.EventError) {
			t.Fatalf("%s: wake failed: %s", fp.name, data)
		}
	}
	resp, body = fpGet(t, c, fp.url(host, "/"), "text/html")
	if resp.StatusCode != http.StatusOK || body != "hello from "+name+"\n" {
		t.Fatalf("%s: after ready: status %d body %.200q, want the app", fp.name, resp.StatusCode, body)
	}
}

// checkHeldForwarded wakes the sleeping app with an API request, held
// until it is ready, and checks what the app learnt of the client: its
// address (127.0.0.2, appended to by sleeper with the proxy's) and https.
func checkHeldForwarded(t *testing.T, fp *frontProxy, c *http.Client, host string) {
	t.Helper()
	resp, body := fpGet(t, c, fp.url(host, "/headers"), "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: held request: status %d body %.200q", fp.name, resp.StatusCode, body)
	}
	var h http.Header
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("%s: held request answered %.200q, not the app's headers: %v", fp.name, body, err)
	}
	if got, want := strings.Join(h.Values("X-Forwarded-For"), ", "), clientAddr+", 127.0.0.1"; got != want {
		t.Errorf("%s: the app saw X-Forwarded-For %q, want %q", fp.name, got, want)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("%s: the app saw X-Forwarded-Proto %q, want https", fp.name, got)
	}
}

// checkUpgrade runs the testapp's upgrade echo through the proxy.
func checkUpgrade(t *testing.T, fp *frontProxy, host string) {
	t.Helper()
	conn := fp.tlsDial(t, host)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, fp.url(host, "/upgrade"), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	if err := req.Write(conn); err != nil {
		t.Fatalf("%s: write upgrade: %v", fp.name, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("%s: read upgrade answer: %v", fp.name, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "echo") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		t.Fatalf("%s: upgrade: status %d, Upgrade %q, body %q", fp.name, resp.StatusCode, resp.Header.Get("Upgrade"), b)
	}
	for i := range 3 {
		msg := fmt.Sprintf("ping %d through %s\n", i, fp.name)
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatalf("%s: write on the upgraded stream: %v", fp.name, err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("%s: echo %q, %v; want %q", fp.name, got, err, msg)
		}
	}
}

func fpGet(t *testing.T, c *http.Client, url, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(b)
}
