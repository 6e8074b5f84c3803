package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections it accepts.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func newTestTransport() *transport {
	return newTransport(&http.Transport{MaxIdleConnsPerHost: 4})
}

func get(t *testing.T, tr http.RoundTripper, url string, readAll bool) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if readAll {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	_ = resp.Body.Close()
	return resp
}

func TestTransportReusesConnections(t *testing.T) {
	t.Parallel()
	srv, conns := countingServer(t, func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok") })
	tr := newTestTransport()
	for range 5 {
		get(t, tr, srv.URL, true)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 sequential requests, want 1", n)
	}
}

func TestTransportDoesNotReuseAfterPartialBodyOrClose(t *testing.T) {
	t.Parallel()
	srv, conns := countingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			rw.Header().Set("Connection", "close")
		}
		_, _ = io.WriteString(rw, strings.Repeat("x", 64<<10))
	})
	tr := newTestTransport()
	get(t, tr, srv.URL+"/", false) // body abandoned: the connection must go
	get(t, tr, srv.URL+"/close", true)
	get(t, tr, srv.URL+"/", true)
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (no reuse after an abandoned body or Connection: close)", n)
	}
}

func TestTransportRetriesStaleIdleConnection(t *testing.T) {
	t.Parallel()
	srv, conns := countingServer(t, func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok") })
	tr := newTestTransport()
	get(t, tr, srv.URL, true)
	// The app closes its idle connections (as after its keep-alive timeout).
	srv.CloseClientConnections()
	if resp := get(t, tr, srv.URL, true); resp.StatusCode != 200 {
		t.Fatalf("after the app closed the idle connection: %d", resp.StatusCode)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestTransportIdleAge(t *testing.T) {
	t.Parallel()
	srv, conns := countingServer(t, func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok") })
	tr := newTestTransport()
	tr.maxIdleAge = 20 * time.Millisecond
	get(t, tr, srv.URL, true)
	time.Sleep(50 * time.Millisecond) // the idle age is what is under test
	get(t, tr, srv.URL, true)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want a fresh one after the idle age", n)
	}
}

func TestTransportSkipsInformationalAnswers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = http.ReadRequest(bufio.NewReader(c))
		_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}()
	resp := get(t, newTestTransport(), "http://"+ln.Addr().String()+"/", true)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want the final 200", resp.StatusCode)
	}
}

func TestTransportBodiesGoFullDuplex(t *testing.T) {
	t.Parallel()
	// An echo that answers while it reads: a writer that finishes before it
	// reads would deadlock once the socket buffers fill.
	srv, _ := countingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		http.NewResponseController(rw).EnableFullDuplex()
		_, _ = io.Copy(rw, r.Body)
	})
	const size = 16 << 20
	req, _ := http.NewRequest(http.MethodPost, srv.URL, io.LimitReader(zeros{}, size))
	req.ContentLength = size
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := newTestTransport().RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if n != size {
		t.Fatalf("echoed %d bytes, want %d", n, size)
	}
}

func TestTransportCancelledRequestEnds(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	// The upstream answers only when the client goes: a round trip that
	// ignored the context would never end.
	if _, err := newTestTransport().RoundTrip(req); err == nil {
		t.Fatal("want an error from the cancelled request")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestTransportCloseBeforeEOFDoesNotDrain(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t, func(rw http.ResponseWriter, r *http.Request) {
		for r.Context().Err() == nil { // an endless stream
			if _, err := rw.Write(make([]byte, 32<<10)); err != nil {
				return
			}
		}
	})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := newTestTransport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = resp.Body.Read(make([]byte, 1024))
	done := make(chan struct{})
	go func() { _ = resp.Body.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Body.Close blocked: it drains an endless body instead of closing the connection")
	}
}

func TestTransportDefaultPort(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	_, err := newTestTransport().RoundTrip(req)
	if err != nil && strings.Contains(err.Error(), "missing port") {
		t.Fatalf("an upstream without a port is not dialled on 80: %v", err)
	}
}

func TestTransportRetryDialsFresh(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t, func(rw http.ResponseWriter, _ *http.Request) {
		time.Sleep(20 * time.Millisecond) // overlap the two requests: two pooled connections
		_, _ = io.WriteString(rw, "ok")
	})
	tr := newTestTransport()
	done := make(chan struct{}, 2)
	for range 2 {
		go func() { get(t, tr, srv.URL, true); done <- struct{}{} }()
	}
	<-done
	<-done
	srv.CloseClientConnections() // an app restart: every kept-alive connection dies
	if resp := get(t, tr, srv.URL, true); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestTransportReapsIdleConnections(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t, func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "ok") })
	tr := newTestTransport()
	tr.maxIdleAge = 20 * time.Millisecond
	get(t, tr, srv.URL, true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr.mu.Lock()
		n := len(tr.idle)
		tr.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("idle connections of an address nobody uses any more are never closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
