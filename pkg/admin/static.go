package admin

import (
	"embed"
	"net/http"
)

// static holds the status page's stylesheet and script, served under
// /static/ by the admin listener itself so that statusCSP can forbid any
// inline code and every other origin.
//
//go:embed static/status.css static/status.js
var static embed.FS

// statusCSP lets the status page load only its own stylesheet and script
// and call only its own API: an error text that slipped past escaping
// still could not run.
const statusCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveStatic serves the embedded files; they change only with sleeper's
// version, so a short cache is enough.
func serveStatic() http.Handler {
	fs := http.FileServerFS(static)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Cache-Control", "no-cache")
		rw.Header().Set("X-Content-Type-Options", "nosniff")
		fs.ServeHTTP(rw, r)
	})
}
