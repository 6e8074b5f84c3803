// Package admin serves sleeper's admin listener (--admin-addr): health,
// metrics, the containers API and the status page. It never proxies.
package admin

import (
	"net/http"
)

// Config builds the admin handler.
type Config struct {
	// Synced is closed once the first discovery has finished; /healthz says
	// "starting" until then but still answers 200, because sleeper is alive.
	Synced <-chan struct{}
}

// NewHandler returns the admin mux.
func NewHandler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		select {
		case <-cfg.Synced:
			_, _ = rw.Write([]byte("ok\n"))
		default:
			_, _ = rw.Write([]byte("starting\n"))
		}
	})
	return mux
}
