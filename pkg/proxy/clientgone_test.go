package proxy

import (
	"sleeper/internal/await"

	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// TestHeldPostDroppedWhenClientLeaves: a client sends a POST with a body to
// a sleeping container and hangs up while it is held; after the wake, the
// app must not receive it. Checked twice: by the watch while held (the
// request lets go of its place before the wake ends) and by the last check
// before forwarding (the watch too slow to see it). A client that stays
// gets its answer, so the test can tell delivery from its absence.
func TestHeldPostDroppedWhenClientLeaves(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		poll        time.Duration
		leave       bool
		leftEarly   bool // the request lets go before the wake ends
		wantPosts   int64
		wantAnswers bool
	}{
		{name: "noticed while held", poll: 5 * time.Millisecond, leave: true, leftEarly: true},
		{name: "noticed before forwarding", poll: time.Hour, leave: true},
		{name: "client stays", poll: 5 * time.Millisecond, wantPosts: 1, wantAnswers: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var posts atomic.Int64
			app := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					b, _ := io.ReadAll(r.Body)
					posts.Add(1)
					_, _ = io.WriteString(rw, "got "+string(b))
				}
			}))
			t.Cleanup(app.Close)
			f.Update("app", func(c *watcher.Container) { c.Published["80/tcp"] = strings.TrimPrefix(app.URL, "http://") })
			gate := f.hold()
			spec := testSpec()
			spec.WakeTimeout = time.Minute // longer than any wait below: no 504 ends the hold
			w := newTestWatcher(t, f, "app", spec)
			h, _ := testHandler()
			h.clientPoll = tc.poll
			front := frontDoor(t, h, w)

			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = io.WriteString(c, "POST /hook HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 5\r\n\r\nhello")
			await.Eventually(t, 5*time.Second, "the POST to be held", func() bool { return w.Info().Held == 1 })
			if tc.leave {
				_ = c.Close()
			}
			if tc.leftEarly {
				await.Eventually(t, 5*time.Second, "the held POST to be dropped while the wake runs", func() bool { return w.Info().Held == 0 })
			}
			close(gate)
			if tc.wantAnswers {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != "got hello" {
					t.Fatalf("answer %d %q, want the app's", resp.StatusCode, b)
				}
			}
			// Held drops to 0 when hold returns, after any forwarding.
			await.Eventually(t, 5*time.Second, "the wake and the request to end", func() bool { return w.Info().Held == 0 && w.State() == watcher.StateReady })
			if n := posts.Load(); n != tc.wantPosts {
				t.Fatalf("the app received %d POSTs, want %d", n, tc.wantPosts)
			}
		})
	}
}

// frontDoor serves h for w on loopback with the servers' own settings.
func frontDoor(t *testing.T, h *Handler, w *watcher.Watcher) string {
	t.Helper()
	s := NewServer(ServerConfig{Log: slog.New(slog.DiscardHandler)})
	srv := s.newHTTPServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { h.Serve(w, rw, r) }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}
