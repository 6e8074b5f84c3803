package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"sleeper/pkg/watcher"
)

// eventWire is one wake event as /.sleeper/events sends it.
type eventWire struct {
	Type      watcher.EventType `json:"type"`
	Message   string            `json:"message"`
	Time      string            `json:"time"` // RFC 3339 with nanoseconds, UTC
	ElapsedMS int64             `json:"elapsed_ms"`
}

// reconnectMS is the EventSource retry delay: a sleeper restart in the
// middle of a wake costs the page a second, not the browser's default 3 s.
const reconnectMS = 1000

// serveEvents streams the container's wake as Server-Sent Events: a replay
// of the current wake's events, then each new one as it happens, until the
// wake ends (ready or error) or the client goes.
//
// Every stream reads the watcher's Progress, which is the one broadcaster
// per container: a tab costs this handler's goroutine and nothing else.
func (h *Handler) serveEvents(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	hd := rw.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	hd.Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	s := &sseWriter{rw: rw, rc: http.NewResponseController(rw)}
	s.printf("retry: %d\n\n", reconnectMS)

	events, changed := w.Progress()
	if w.State() == watcher.StateReady {
		s.event(readyEvent(events))
		s.flush()
		return
	}
	tick := time.NewTicker(h.loading.heartbeatInterval())
	defer tick.Stop()
	var sent int            // how many events of the current wake went out
	var first watcher.Event // the current wake's first event, to notice a new wake
	for s.err == nil {
		if len(events) < sent || (sent > 0 && !sameEvent(events[0], first)) {
			sent = 0 // another wake: start over
		}
		for _, ev := range events[sent:] {
			s.event(ev, events[0].Time)
			if ev.Type == watcher.EventReady || ev.Type == watcher.EventError {
				s.flush() // the page decides what comes next
				return
			}
		}
		if sent = len(events); sent > 0 {
			first = events[0]
		}
		s.flush()
		select {
		case <-h.closing:
			return
		case <-r.Context().Done():
			return
		case <-tick.C:
			s.printf(": keep-alive\n\n")
			s.flush()
		case <-changed:
		}
		events, changed = w.Progress()
	}
}

// readyEvent is the one event for a client that connects to a ready
// container, with its wake's start: the last wake's own ready event when
// there is one (a container started by hand may have none).
func readyEvent(events []watcher.Event) (watcher.Event, time.Time) {
	if n := len(events); n > 0 && events[n-1].Type == watcher.EventReady {
		return events[n-1], events[0].Time
	}
	return watcher.Event{Type: watcher.EventReady, Time: time.Now(), Message: "ready"}, time.Time{}
}

func sameEvent(a, b watcher.Event) bool {
	return a.Type == b.Type && a.Message == b.Message && a.Time.Equal(b.Time)
}

// sseWriter writes the event-stream format and keeps the first error, so
// the loop checks once per round instead of after every write.
type sseWriter struct {
	rw  io.Writer
	rc  *http.ResponseController
	err error
}

func (s *sseWriter) printf(format string, args ...any) {
	if s.err == nil {
		_, s.err = fmt.Fprintf(s.rw, format, args...)
	}
}

// event writes one event; start is the wake's first event time, for
// elapsed_ms (zero: elapsed unknown, sent as 0).
func (s *sseWriter) event(ev watcher.Event, start time.Time) {
	var elapsed int64
	if !start.IsZero() {
		elapsed = max(0, ev.Time.Sub(start).Milliseconds())
	}
	data, err := json.Marshal(eventWire{
		Type:      ev.Type,
		Message:   ev.Message,
		Time:      ev.Time.UTC().Format(time.RFC3339Nano),
		ElapsedMS: elapsed,
	})
	if err != nil {
		s.err = err
		return
	}
	// Type is one of the watcher's fixed names and JSON has no raw
	// newlines, so neither can break the framing.
	s.printf("event: %s\ndata: %s\n\n", ev.Type, data)
}

func (s *sseWriter) flush() {
	if s.err == nil {
		s.err = s.rc.Flush()
	}
}
