package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"sleeper/pkg/watcher"
)

// A held request with a body cannot rely on net/http to notice its client
// leaving: the server watches a connection for EOF (and cancels the
// request's context) only once the body has been read to its end, and a
// held body is left unread until the app is ready. A request sent to the
// app for nobody is worse than none (a webhook whose sender timed out and
// will retry gets delivered twice), so while such a request is held its
// connection is checked every clientPoll, and once more just before it is
// forwarded. A request without a body needs none of this: its context
// ends when the client leaves.

// errClientGone ends a held request's wait when its client has left.
var errClientGone = errors.New("the client closed its connection while its request was held")

// defaultClientPoll is how often a held request's connection is checked:
// one poll(2) each, and only for held requests with a body.
const defaultClientPoll = 250 * time.Millisecond

type connKey struct{}

// withConn is the front door servers' ConnContext: it lets a held request
// find its client's connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// bodyConn returns the client connection of a request with a body, or nil.
func bodyConn(r *http.Request) net.Conn {
	if !hasBody(r) {
		return nil
	}
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}

// watchClient returns a context that also ends, with errClientGone, when
// the client of r leaves, and a function that stops watching (and waits
// for the watcher); calling it more than once is harmless.
func (h *Handler) watchClient(ctx context.Context, r *http.Request) (context.Context, func()) {
	c := bodyConn(r)
	if c == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(h.clientPoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if peerClosed(c) {
					cancel(errClientGone)
					return
				}
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
	}
}

// dropGone reports whether a held request must be dropped because its
// client has left (err is the wait's error, nil after a wake); the request
// then goes neither to the app nor back to anyone. It is logged; in
// sleeper_requests_total it stays counted as held.
func (h *Handler) dropGone(w *watcher.Watcher, r *http.Request, err error) bool {
	if !errors.Is(err, errClientGone) {
		c := bodyConn(r)
		if c == nil || !peerClosed(c) {
			return false
		}
	}
	h.log.Info("held request dropped: its client left", "container", w.Name(), "method", r.Method, "path", r.URL.Path)
	return true
}
