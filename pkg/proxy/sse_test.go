package proxy

import (
	"sleeper/internal/watchertest"

	"sleeper/internal/await"

	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// sseFrame is one parsed block of an event stream.
type sseFrame struct {
	Event, Data, Comment, Retry string
}

// sseClient reads /.sleeper/events from a real HTTP server around Serve.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
	// done is closed when the server's handler returned.
	done chan struct{}
}

// openEvents serves w through h on an httptest server and opens the stream.
func openEvents(t *testing.T, h *Handler, w *watcher.Watcher) *sseClient {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.Serve(w, rw, r)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+eventsPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != v {
			t.Fatalf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("the event stream must not allow other origins")
	}
	return &sseClient{t: t, resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel, done: done}
}

// frame reads the next block; io.EOF when the server ended the stream.
func (c *sseClient) frame() (sseFrame, error) {
	var f sseFrame
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			if f == (sseFrame{}) {
				return f, err
			}
			return f, io.ErrUnexpectedEOF // a block must end with a blank line
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f != (sseFrame{}) {
				return f, nil
			}
		case strings.HasPrefix(line, ":"):
			f.Comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "event: "):
			f.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			f.Data = strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "retry: "):
			f.Retry = strings.TrimPrefix(line, "retry: ")
		default:
			c.t.Fatalf("unexpected stream line %q", line)
		}
	}
}

// next returns the next event, skipping comments and retry blocks.
func (c *sseClient) next() eventWire {
	c.t.Helper()
	for {
		f, err := c.frame()
		if err != nil {
			c.t.Fatalf("reading the stream: %v", err)
		}
		if f.Event == "" {
			continue
		}
		var ev eventWire
		if err := json.Unmarshal([]byte(f.Data), &ev); err != nil {
			c.t.Fatalf("event data %q: %v", f.Data, err)
		}
		if string(ev.Type) != f.Event {
			c.t.Fatalf("event %q carries type %q", f.Event, ev.Type)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
			c.t.Fatalf("event time %q: %v", ev.Time, err)
		}
		return ev
	}
}

// expectTypes reads events and checks their types in order.
func (c *sseClient) expectTypes(types ...watcher.EventType) []eventWire {
	c.t.Helper()
	var got []eventWire
	for _, want := range types {
		ev := c.next()
		if ev.Type != want {
			c.t.Fatalf("event %d: got %s (%q), want %s", len(got), ev.Type, ev.Message, want)
		}
		got = append(got, ev)
	}
	return got
}

// expectEnd checks that the server ends the stream.
func (c *sseClient) expectEnd() {
	c.t.Helper()
	for {
		f, err := c.frame()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.t.Fatalf("stream did not end cleanly: %v", err)
		}
		if f.Event != "" {
			c.t.Fatalf("unexpected event %s after the last one", f.Event)
		}
	}
}

func TestSSEReplayThenLive(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.app.SetUp(false) // the wake gets as far as waiting for the app
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	w.Kick()
	await.Eventually(t, 5*time.Second, "three wake events", func() bool { ev, _ := w.Progress(); return len(ev) == 3 })

	c := openEvents(t, h, w)
	replay := c.expectTypes(watcher.EventWaking, watcher.EventStarted, watcher.EventWaitingReady)
	if replay[0].Message != "waking app" || replay[0].ElapsedMS != 0 || replay[2].Message != "waiting for the app to answer" {
		t.Fatalf("replay %+v", replay)
	}
	f.app.SetUp(true)
	ready := c.expectTypes(watcher.EventReady)[0]
	if ready.ElapsedMS < replay[2].ElapsedMS {
		t.Fatalf("elapsed_ms went back: %d after %d", ready.ElapsedMS, replay[2].ElapsedMS)
	}
	c.expectEnd()
}

func TestSSELiveFromTheStart(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	gate := f.hold()
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	// Connected before any wake: nothing to replay, then the wake as it goes.
	c := openEvents(t, h, w)
	w.Kick()
	c.expectTypes(watcher.EventWaking)
	close(gate)
	c.expectTypes(watcher.EventStarted, watcher.EventWaitingReady, watcher.EventReady)
	c.expectEnd()
}

func TestSSEError(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.Behave("app", watchertest.Behaviour{ExitOnStart: true})
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	w.Kick()
	c := openEvents(t, h, w)
	c.expectTypes(watcher.EventWaking, watcher.EventStarted)
	evs := c.expectTypes(watcher.EventError)
	if !strings.Contains(evs[0].Message, "exited with code 3") {
		t.Fatalf("error event %q", evs[0].Message)
	}
	c.expectEnd()
	// A tab opened later gets the failed wake's events at once.
	c = openEvents(t, h, w)
	c.expectTypes(watcher.EventWaking, watcher.EventStarted, watcher.EventError)
	c.expectEnd()
}

func TestSSEHeartbeat(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	gate := f.hold()
	t.Cleanup(func() { close(gate) })
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler() // 50 ms heartbeat
	w.Kick()
	c := openEvents(t, h, w)
	// The start is held: only heartbeats can arrive.
	beats := 0
	for beats < 3 {
		fr, err := c.frame()
		if err != nil {
			t.Fatal(err)
		}
		if fr.Comment == "keep-alive" {
			beats++
		}
	}
}

func TestSSEClientGoneEndsHandler(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	gate := f.hold()
	t.Cleanup(func() { close(gate) })
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	h.loading.heartbeat = time.Hour // only the client's leaving can end it
	w.Kick()
	c := openEvents(t, h, w)
	c.expectTypes(watcher.EventWaking)
	select {
	case <-c.done:
		t.Fatal("handler ended while the client was there")
	case <-time.After(50 * time.Millisecond):
	}
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still running 5s after the client left")
	}
}

func TestSSEReadyAtConnect(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := openEvents(t, h, w)
	f0, err := c.frame()
	if err != nil || f0.Retry == "" {
		t.Fatalf("first block %+v, %v: want the retry interval", f0, err)
	}
	c.expectTypes(watcher.EventReady)
	c.expectEnd()
	if f.Calls("start", "") != 1 {
		t.Fatalf("%d starts: the stream must not wake anything", f.Calls("start", ""))
	}
}

func TestSSEManyTabsOneWake(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	gate := f.hold()
	w := newTestWatcher(t, f, "app", testSpec())
	h, _ := testHandler()
	w.Kick()
	var tabs []*sseClient
	for range 20 {
		c := openEvents(t, h, w)
		c.expectTypes(watcher.EventWaking)
		tabs = append(tabs, c)
	}
	close(gate)
	for _, c := range tabs {
		c.expectTypes(watcher.EventStarted, watcher.EventWaitingReady, watcher.EventReady)
		c.expectEnd()
	}
	if f.Calls("start", "") != 1 {
		t.Fatalf("%d starts for 20 tabs, want 1", f.Calls("start", ""))
	}
}
