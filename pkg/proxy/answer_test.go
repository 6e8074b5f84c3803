package proxy

import (
	"sleeper/internal/syncbuf"
	"sleeper/internal/watchertest"

	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// internalError is what an engine or a provider may report: it names a
// dependency, an internal address, a Proxmox node and vmid.
const internalError = "dependency secret-db: dial tcp 10.9.8.7:5432: node pve-node-7 vmid 4242 refused"

var internalBits = []string{"secret-db", "10.9.8.7", "pve-node-7", "4242", "dial tcp"}

func mustHide(t *testing.T, where, text string) {
	t.Helper()
	for _, bit := range internalBits {
		if strings.Contains(text, bit) {
			t.Errorf("%s repeats the internal %q: %s", where, bit, text)
		}
	}
}

// TestPublicAnswersHideWakeErrors: a failed wake is told to clients on a
// routed host (the held request's 502, /.sleeper/status, the SSE error
// event, the loading page) by its short reason only; the log has it all.
func TestPublicAnswersHideWakeErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.Behave("app", watchertest.Behaviour{StartErr: errors.New(internalError)})
	var logs syncbuf.Buffer
	w := watcher.New(watcher.Config{Name: "app", Spec: testSpec(), Runtime: f, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(w.Close)
	w.Observe(f.Container("app"))
	h, _ := testHandler()
	const reason = "the app failed to start"

	resp := serve(h, w, httptest.NewRequest(http.MethodGet, "/api", nil))
	if resp.Code != http.StatusBadGateway || resp.Body.String() != "sleeper: app: "+reason+"\n" {
		t.Errorf("held request: %d %q, want 502 with the short reason", resp.Code, resp.Body.String())
	}

	var st statusWire
	body := serve(h, w, httptest.NewRequest(http.MethodGet, statusPath, nil)).Body.String()
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.State != "error" || st.Error != reason {
		t.Errorf("status %s (%v), want state error with the short reason", body, err)
	}
	mustHide(t, "status", body)

	c := openEvents(t, h, w)
	evs := c.expectTypes(watcher.EventWaking, watcher.EventError)
	if evs[1].Message != reason {
		t.Errorf("SSE error event %q, want %q", evs[1].Message, reason)
	}
	for _, ev := range evs {
		mustHide(t, "SSE event", ev.Message)
	}

	page := serve(h, w, browserRequest("/")).Body.String()
	if !strings.Contains(page, reason) {
		t.Errorf("loading page does not show the reason:\n%s", page)
	}
	mustHide(t, "loading page", page)

	// The operator still gets the whole error: in the log, with the
	// container's name, and in the admin API's view of the watcher.
	if l := logs.String(); !strings.Contains(l, "container=app") || !strings.Contains(l, "10.9.8.7") {
		t.Errorf("log lacks the container or the full error:\n%s", l)
	}
	if info := w.Info(); !strings.Contains(info.Error, internalError) {
		t.Errorf("Info().Error = %q, want the full error for the admin API", info.Error)
	}
}

// TestUpstreamErrorHidesAddress: an app that stops answering gets its
// clients a 502 with the short reason; the dial error, which names the
// upstream's address, goes to the log with the container.
func TestUpstreamErrorHidesAddress(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, "app", testSpec())
	var logs syncbuf.Buffer
	h := NewHandler(Config{MaxHeld: 100, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := f.app.Addr
	f.app.Close() // the app is gone: every dial is refused
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := serve(h, w, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	if resp.Code != http.StatusBadGateway || resp.Body.String() != "sleeper: app: the app is not reachable\n" {
		t.Fatalf("got %d %q, want 502 with the short reason", resp.Code, resp.Body.String())
	}
	if strings.Contains(resp.Body.String(), "127.0.0.1") {
		t.Errorf("body names the upstream address: %q", resp.Body.String())
	}
	if l := logs.String(); !strings.Contains(l, "container=app") || !strings.Contains(l, addr) {
		t.Errorf("log lacks the container or the upstream error:\n%s", l)
	}
}
