package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sleeper/internal/await"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sleeper/pkg/admin"
	"sleeper/pkg/labels"
	"sleeper/pkg/proxy"
	"sleeper/pkg/watcher"
	"sleeper/pkg/webhook"
)

const monitorAgent = "Uptime-Kuma/1.23.16"

func defaultIgnoreAgents(t *testing.T) []string {
	t.Helper()
	agents, err := labels.ParseAgents(proxy.DefaultIgnoreAgents())
	if err != nil {
		t.Fatal(err)
	}
	return agents
}

// monitorGet is one uptime monitor probe through sleeper.
func (s *stack) monitorGet(host string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, s.base+"/", nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	req.Header.Set("User-Agent", monitorAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestMonitorNeitherWakesNorKeepsAwake: an uptime monitor (by its default
// User-Agent) gets 503 and the status JSON from a sleeping app without
// starting it, and polling an awake app every 300 ms does not keep it
// awake past its 2 s idle timeout.
func TestMonitorNeitherWakesNorKeepsAwake(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{ignoreAgents: defaultIgnoreAgents(t)})
	t.Run("asleep", func(t *testing.T) {
		t.Parallel()
		name := s.sleepingApp("monitored")
		resp, body, err := s.monitorGet(name + ".localhost")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Name, State string
			Ready       bool
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("monitor got %d (Retry-After %q) %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil || st.Name != name || st.State != "asleep" || st.Ready {
			t.Fatalf("monitor got %q (%v), want the status JSON saying asleep", body, err)
		}
		await.HoldsFor(t, time.Second, "left asleep by the monitor", func() bool {
			return s.reg.Get(name).State() == watcher.StateAsleep && !running(s.inspect(name))
		})
	})
	t.Run("awake", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "polled")
		host := name + ".localhost"
		s.run(name, true, []string{"APP_NAME=" + name}, "hosts", host, "idle_timeout", "2s")
		s.waitState(name, watcher.StateReady, 10*time.Second)
		var mu sync.Mutex
		codes := map[int]int{}
		proxiedBody := ""
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { // the monitor, polling every 300 ms until the test ends
			defer close(done)
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for {
				if resp, body, err := s.monitorGet(host); err == nil {
					mu.Lock()
					codes[resp.StatusCode]++
					if resp.StatusCode == http.StatusOK {
						proxiedBody = body
					}
					mu.Unlock()
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
		defer func() { cancel(); <-done }()
		s.waitEngine(name, "the polled app to sleep", 20*time.Second, exited)
		// Still polled while asleep: answered, never woken.
		await.Eventually(t, 5*time.Second, "a 503 to the monitor", func() bool { mu.Lock(); defer mu.Unlock(); return codes[http.StatusServiceUnavailable] > 0 })
		await.HoldsFor(t, time.Second, "left asleep by the monitor", func() bool { return !running(s.inspect(name)) })
		mu.Lock()
		defer mu.Unlock()
		if codes[http.StatusOK] == 0 || !strings.Contains(proxiedBody, name) {
			t.Fatalf("the monitor was never proxied to the awake app: %v %q", codes, proxiedBody)
		}
	})
}

// hookReceiver verifies signatures as README shows and keeps the events.
type hookReceiver struct {
	mu     sync.Mutex
	events []webhook.Payload
	bad    int
}

func (h *hookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := hmac.New(sha256.New, []byte("e2e-secret"))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	h.mu.Lock()
	defer h.mu.Unlock()
	var p webhook.Payload
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Sleeper-Signature"))) || json.Unmarshal(body, &p) != nil {
		h.bad++
		rw.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.events = append(h.events, p)
}

func (h *hookReceiver) find(event, container string) (webhook.Payload, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.events {
		if p.Event == event && p.Container == container {
			return p, true
		}
	}
	return webhook.Payload{}, false
}

// TestWebhooksOnTheRealEngine: a local receiver gets signed woke and
// slept events for a real container, and config_error for a bad label.
func TestWebhooksOnTheRealEngine(t *testing.T) {
	t.Parallel()
	recv := &hookReceiver{}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	n := webhook.New(webhook.Config{URLs: []string{srv.URL + "/hook"}, Secret: "e2e-secret", Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	s := startSleeper(t, stackOptions{recorder: webhook.NewRecorder(nil, n)})
	n.Attach(s.reg)

	name := uniqueName(t, "hooked")
	host := name + ".localhost"
	s.run(name, false, []string{"APP_NAME=" + name}, "hosts", host, "idle_timeout", "2s")
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	if resp, body := s.get(host, "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("wake: %d %q", resp.StatusCode, body)
	}
	await.Eventually(t, 10*time.Second, "the woke event", func() bool { _, ok := recv.find("woke", name); return ok })
	await.Eventually(t, 20*time.Second, "the slept event", func() bool { _, ok := recv.find("slept", name); return ok })
	woke, _ := recv.find("woke", name)
	slept, _ := recv.find("slept", name)
	if woke.Provider != "docker" || woke.WakeMS == nil || woke.Time.IsZero() {
		t.Errorf("woke = %+v", woke)
	}
	if slept.Reason != "idle" || slept.Method != "stop" || slept.Provider != "docker" {
		t.Errorf("slept = %+v", slept)
	}

	bad := uniqueName(t, "badlabel")
	s.run(bad, false, nil, "hosts", bad+".localhost", "port", "not-a-port")
	await.Eventually(t, 10*time.Second, "the config_error event", func() bool { _, ok := recv.find("config_error", bad); return ok })
	cfgErr, _ := recv.find("config_error", bad)
	if !strings.Contains(cfgErr.Reason, s.prefix+".port") || !strings.Contains(cfgErr.Reason, "not-a-port") {
		t.Errorf("config_error = %+v, want the label and its value in the reason", cfgErr)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.bad > 0 {
		t.Errorf("%d deliveries failed verification", recv.bad)
	}
}

// TestStatusPageButtonsInChromium: on the status page a click on wake asks
// for the admin token on the page (a wrong one is asked again), wakes the
// app, and a click on sleep uses the kept token to put it to sleep.
func TestStatusPageButtonsInChromium(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	adm := httptest.NewServer(admin.NewHandler(admin.Config{Registry: s.reg, Token: "e2e-token", Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(adm.Close)
	name := s.sleepingApp("buttons")
	tab := newTab(t, startBrowser(t))
	button := func(action string) string {
		return `button[data-action="` + action + `"][data-name="` + name + `"]`
	}
	formShown := `!document.getElementById('token-form').hidden`
	if err := chromedp.Do(tab, chromedp.Navigate(adm.URL+"/"), chromedp.Click(chromedp.CSS(button("wake")))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, formShown, 10*time.Second, "the token form")
	if err := chromedp.Do(tab, chromedp.SendKeys(chromedp.ID("token"), "wrong"), chromedp.Click(chromedp.CSS("#token-form button"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, formShown+` && document.getElementById('msg').textContent.includes('Wrong')`, 10*time.Second, "the token asked again")
	if err := chromedp.Do(tab, chromedp.SendKeys(chromedp.ID("token"), "e2e-token"), chromedp.Click(chromedp.CSS("#token-form button"))); err != nil {
		t.Fatal(err)
	}
	s.waitState(name, watcher.StateReady, 30*time.Second)
	waitJS(t, tab, `[...document.querySelectorAll('tr')].some(r => r.textContent.includes('`+name+`') && r.querySelector('td.state.ready'))`,
		15*time.Second, "the page showing the app ready")
	if got := evalString(t, tab, `sessionStorage.getItem('sleeper.adminToken') + '|' + document.cookie`); got != "e2e-token|" {
		t.Fatalf("token kept as %q, want in sessionStorage only", got)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(button("sleep")))); err != nil {
		t.Fatal(err)
	}
	s.waitState(name, watcher.StateAsleep, 30*time.Second)
	s.waitEngine(name, "the app stopped", 10*time.Second, exited)
	// The sleep went through (the API only acts on the right token) and the
	// page, reloaded, shows it without having asked for the token again.
	waitJS(t, tab, `document.getElementById('token-form').hidden && !document.getElementById('msg').textContent.includes('token') &&
		[...document.querySelectorAll('tr')].some(r => r.textContent.includes('`+name+`') && r.querySelector('td.state.asleep'))`,
		15*time.Second, "the page showing the app asleep")
}
