package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeAwakeMethods compares a GET, whose connection is reused,
// with a HEAD, whose connection is not (bodiless in transport.go).
func BenchmarkServeAwakeMethods(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "hello\n")
	}))
	b.Cleanup(upstream.Close)
	h := readyHandler(b, upstream.URL, Config{})
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		b.Run(m, func(b *testing.B) {
			req := httptest.NewRequest(m, "http://app.localhost/", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
