package watchertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"sleeper/pkg/watcher"
)

// App is an HTTP app behind one of the engine's containers: it answers only
// while that container runs and the app is up; otherwise it accepts and
// hangs up, as docker-proxy does when nothing listens behind it.
type App struct {
	// URL is the app's base URL ("http://127.0.0.1:port").
	URL  string
	Addr string // host:port
	down atomic.Bool
	srv  *httptest.Server
}

// NewApp starts an app for the named container (closed when the test ends)
// and publishes it as the container's port 80/tcp.
func NewApp(t testing.TB, e *Engine, name string) *App {
	t.Helper()
	a := &App{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if a.down.Load() || e.Container(name).Status != watcher.StatusRunning {
			if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(rw, "hello from app at "+r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	a.srv, a.URL, a.Addr = srv, srv.URL, strings.TrimPrefix(srv.URL, "http://")
	e.Update(name, func(c *watcher.Container) {
		if c.Published == nil {
			c.Published = map[string]string{}
		}
		c.Published["80/tcp"] = a.Addr
	})
	return a
}

// SetUp says whether the app answers once its container runs (the default).
func (a *App) SetUp(up bool) { a.down.Store(!up) }

// Close shuts the app down for good: every dial to it is refused.
func (a *App) Close() { a.srv.Close() }
