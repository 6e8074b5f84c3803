package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// rawUpstream answers every body-less request on a connection with a fixed
// 24-byte answer, allocating nothing per request, so that a benchmark's
// allocations are the proxy's own.
func rawUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\nhello from the upstream\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// A request ends at its first empty line (no bodies here).
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// rawClient sends one keep-alive GET and reads the answer, allocating
// nothing once warmed up.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
}

func (rc *rawClient) get(tb testing.TB) {
	if _, err := rc.c.Write(rc.req); err != nil {
		tb.Fatal(err)
	}
	n := -1
	status := true
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if status {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				tb.Fatalf("%q", line)
			}
			status = false
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n < 0 {
		tb.Fatal("no Content-Length")
	}
	if _, err := io.ReadFull(rc.br, rc.buf[:n]); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkProxyWire is one body-less request over a kept-alive client
// connection, through sleeper's front door server and handler, to an
// upstream over loopback. Client and upstream allocate nothing per
// request: allocs/op are the proxy's (net/http's server included).
func BenchmarkProxyWire(b *testing.B) {
	h := readyHandler(b, rawUpstream(b), Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnContext: withConn}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	rc := &rawClient{c: c, br: bufio.NewReader(c), buf: make([]byte, 4096),
		req: []byte("GET /some/path?q=1 HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
	rc.get(b)
	b.ReportAllocs()
	for b.Loop() {
		rc.get(b)
	}
}
