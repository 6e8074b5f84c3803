package webhook_test

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
	"sleeper/internal/syncbuf"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/watcher"
	"sleeper/pkg/webhook"
)

// receiver is a webhook receiver that verifies signatures as README tells
// users to, and keeps what it got.
type receiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	got    []webhook.Payload
	bad    []string
	calls  atomic.Int64
	status func(call int64) int // answer of the nth call (1-based); 200 when nil
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		if r.status != nil {
			if code := r.status(n); code != http.StatusOK {
				rw.WriteHeader(code)
				return
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if !verify(secret, body, req.Header.Get("X-Sleeper-Signature")) {
			r.bad = append(r.bad, string(body))
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil || req.Header.Get("X-Sleeper-Event") != p.Event {
			r.bad = append(r.bad, string(body))
			return
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// verify is the receiver's side of the signature, written from README.
func verify(secret string, body []byte, header string) bool {
	if secret == "" {
		return header == ""
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(header))
}

func (r *receiver) payloads() []webhook.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Payload(nil), r.got...)
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func run(t *testing.T, n *webhook.Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

type lookup []watcher.Info

func (l lookup) List() []watcher.Info { return l }

func TestRecorderSendsSignedEvents(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, "s3cret")
	n := webhook.New(webhook.Config{URLs: []string{recv.srv.URL}, Secret: "s3cret"})
	n.Attach(lookup{{Name: "app", Provider: "docker"}, {Name: "lxc", Provider: "proxmox"}, {Name: "bad", Provider: "docker", Error: "label sleeper.port=x: not a port"}})
	run(t, n)
	rec := webhook.NewRecorder(watcher.NopRecorder{}, n)
	rec.Wake("app", "success", 1500*time.Millisecond)
	rec.Sleep("lxc", "stop", "idle")
	rec.Wake("app", "timeout", 60*time.Second)
	rec.Wake("app", "cancelled", time.Second) // sleeper shutting down: no event
	rec.ConfigError("bad", true)
	eventually(t, func() bool { return len(recv.payloads()) == 4 }, "four events")
	got := recv.payloads()
	want := []struct{ event, container, provider, reason string }{
		{"woke", "app", "docker", ""},
		{"slept", "lxc", "proxmox", "idle"},
		{"wake_failed", "app", "docker", "timeout"},
		{"config_error", "bad", "docker", "label sleeper.port=x: not a port"},
	}
	for i, w := range want {
		p := got[i]
		if p.Event != w.event || p.Container != w.container || p.Provider != w.provider || p.Reason != w.reason || p.Time.IsZero() {
			t.Errorf("event %d = %+v, want %+v", i, p, w)
		}
	}
	if got[0].WakeMS == nil || *got[0].WakeMS != 1500 || got[1].Method != "stop" {
		t.Errorf("timings or method missing: %+v %+v", got[0], got[1])
	}
	if len(recv.bad) > 0 {
		t.Errorf("bad signatures or bodies: %q", recv.bad)
	}
}

func TestUnsignedWithoutSecret(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, "")
	n := webhook.New(webhook.Config{URLs: []string{recv.srv.URL}})
	run(t, n)
	n.Send(webhook.Payload{Event: "slept", Container: "app"})
	eventually(t, func() bool { return len(recv.payloads()) == 1 }, "the event")
}

func TestConfigErrorOncePerBreak(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, "")
	n := webhook.New(webhook.Config{URLs: []string{recv.srv.URL}})
	run(t, n)
	rec := webhook.NewRecorder(nil, n)
	rec.ConfigError("app", true)
	rec.ConfigError("app", true) // every reconcile says so again
	rec.ConfigError("app", false)
	rec.ConfigError("app", true)
	rec.Sleep("marker", "stop", "idle") // delivered in order: after it, nothing more is coming
	eventually(t, func() bool { return len(recv.payloads()) == 3 }, "three events")
	if got := recv.payloads(); got[0].Event != "config_error" || got[1].Event != "config_error" || got[2].Container != "marker" {
		t.Fatalf("got %+v, want config_error twice then the marker", got)
	}
}

// TestRetriesAreBounded: a failing delivery is tried Retries+1 times, then
// the next event goes; a receiver that recovers gets the event.
func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, "")
	recv.status = func(call int64) int {
		if call <= 5 { // event 1: 4 failed tries; event 2: one failure, then ok
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	n := webhook.New(webhook.Config{URLs: []string{recv.srv.URL}, Retries: 3, Backoff: time.Millisecond})
	run(t, n)
	n.Send(webhook.Payload{Event: "slept", Container: "lost"})
	n.Send(webhook.Payload{Event: "slept", Container: "kept"})
	eventually(t, func() bool { return len(recv.payloads()) == 1 }, "the second event")
	if got := recv.payloads()[0].Container; got != "kept" || recv.calls.Load() != 6 {
		t.Fatalf("delivered %q after %d calls, want kept after 6 (4 tries, then a failure and a success)", got, recv.calls.Load())
	}
}

// TestSendNeverBlocks: a receiver that never answers cannot slow the
// caller: the queue is bounded and a full queue drops.
func TestSendNeverBlocks(t *testing.T) {
	t.Parallel()
	stuck := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stuck }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stuck) })
	var logs syncbuf.Buffer
	n := webhook.New(webhook.Config{URLs: []string{srv.URL}, QueueSize: 2, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, n)
	rec := webhook.NewRecorder(nil, n)
	for range 10_000 {
		rec.Sleep("app", "stop", "idle") // would hang here on a blocking queue
	}
}

// TestFailingReceiverLoggedOncePerMinute: many failed deliveries within a
// minute make one log line; the next minute another, then the recovery.
func TestFailingReceiverLoggedOncePerMinute(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		if down.Load() {
			rw.WriteHeader(http.StatusBadGateway)
		}
	}))
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var logs syncbuf.Buffer
	n := webhook.New(webhook.Config{URLs: []string{srv.URL + "/hook?token=topsecret"}, Retries: -1, Now: clock,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, n)
	count := func() int { return strings.Count(logs.String(), "webhook delivery failed") }
	for i := range 20 {
		n.Send(webhook.Payload{Event: "slept", Container: "app"})
		eventually(t, func() bool { return calls.Load() == int64(i+1) }, "a delivery")
	}
	eventually(t, func() bool { return count() == 1 }, "the first failure logged")
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	n.Send(webhook.Payload{Event: "slept", Container: "app"})
	eventually(t, func() bool { return count() == 2 }, "a second line a minute later")
	if c := count(); c != 2 {
		t.Fatalf("%d failure lines for 21 failures over a minute, want 2:\n%s", c, logs.String())
	}
	down.Store(false)
	n.Send(webhook.Payload{Event: "slept", Container: "app"})
	eventually(t, func() bool { return strings.Contains(logs.String(), "answers again") }, "the recovery logged")
	if strings.Contains(logs.String(), "topsecret") {
		t.Fatalf("the log repeats the URL's token:\n%s", logs.String())
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "example.com/hook", "ftp://example.com/", "http://"} {
		if _, err := webhook.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted it", bad)
		}
	}
	if _, err := webhook.ParseURL("https://hooks.example.com/x?token=1"); err != nil {
		t.Error(err)
	}
}
