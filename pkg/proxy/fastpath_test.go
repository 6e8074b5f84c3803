package proxy

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLeanPathSendsWhatReverseProxySends sends the same requests through
// the lean path and through the ReverseProxy path and compares what the
// app receives: request target, Host and every header.
func TestLeanPathSendsWhatReverseProxySends(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var last *http.Request // the app's last request (a retry sends one twice)
	app := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		last = r
	}))
	got := func() *http.Request {
		mu.Lock()
		defer mu.Unlock()
		r := last
		last = nil
		return r
	}
	t.Cleanup(app.Close)
	target, _ := url.Parse(app.URL)
	for _, trusted := range []bool{false, true} {
		cfg := Config{}
		if trusted {
			cfg.TrustedProxies, _ = ParseTrustedProxies("192.0.2.0/24")
		}
		h := readyHandler(t, app.URL, cfg)
		for _, raw := range []string{
			"GET /a/b%2Fc?x=1&y=%20 HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: ua\r\nAccept: */*\r\n\r\n",
			"GET /? HTTP/1.1\r\nHost: app.localhost:8080\r\nConnection: keep-alive\r\n\r\n",
			"HEAD /h HTTP/1.1\r\nHost: app.localhost\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: front\r\nForwarded: for=1.2.3.4\r\n\r\n",
			"GET http://app.localhost/abs HTTP/1.1\r\nHost: app.localhost\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n",
			"DELETE /d HTTP/1.0\r\nHost: app.localhost\r\n\r\n",
		} {
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			req.RemoteAddr = "192.0.2.7:4242"
			if !leanEligible(req, target) {
				t.Fatalf("not lean: %q", raw)
			}
			h.serveLean(httptest.NewRecorder(), req, "bench", target)
			lean := got()
			h.newProxy("bench", target).rp.ServeHTTP(httptest.NewRecorder(), req)
			std := got()
			if lean == nil || std == nil {
				t.Fatalf("trusted=%v %q: the app got lean %v, ReverseProxy %v", trusted, raw, lean != nil, std != nil)
			}
			if lean.RequestURI != std.RequestURI || lean.Host != std.Host || lean.Method != std.Method {
				t.Errorf("trusted=%v %q: lean %s %s %s, ReverseProxy %s %s %s", trusted, raw,
					lean.Method, lean.RequestURI, lean.Host, std.Method, std.RequestURI, std.Host)
			}
			if !reflect.DeepEqual(lean.Header, std.Header) {
				t.Errorf("trusted=%v %q:\nlean         %v\nReverseProxy %v", trusted, raw, lean.Header, std.Header)
			}
		}
	}
}

// TestLeanPathAllocations bounds the allocations of a proxied body-less
// request, net/http's server included (64 through ReverseProxy before the
// lean path; net/http's own parsing and answer writing are about 25 of
// what is left).
func TestLeanPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled buffers on purpose")
	}
	h := readyHandler(t, rawUpstream(t), Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnContext: withConn}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{c: c, br: bufio.NewReader(c), buf: make([]byte, 4096),
		req: []byte("GET /some/path?q=1 HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
	rc.get(t)
	if n := testing.AllocsPerRun(200, func() { rc.get(t) }); n > 36 {
		t.Errorf("%.0f allocations per proxied request, want at most 36", n)
	}
}
