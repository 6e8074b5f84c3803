package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// transport is the upstream HTTP/1.1 client of the hot path. The standard
// http.Transport hands every request to two goroutines per connection (a
// writer and a reader) and back; on a small machine those handoffs cost as
// much as the proxying itself. Here the request is written and the answer
// read by the calling goroutine, over a pool of kept-alive connections,
// with the standard library's own wire code (Request.Write, ReadResponse).
//
// Anything else goes to the standard transport: requests with a body (an
// app may answer while it still reads the body, which needs a writer and a
// reader at once), https upstreams, protocol upgrades (the response body
// must then be the connection), and Expect: 100-continue.
type transport struct {
	fallback *http.Transport
	dialer   net.Dialer
	maxIdle  int // per upstream address
	// maxIdleAge bounds how long a connection waits in the pool. Without a
	// reader watching idle connections (the standard transport keeps one
	// goroutine per connection for that), a connection the app closed for
	// idleness is only found out by using it; apps close idle connections
	// after 2 s (gunicorn) or 5 s (Node) at the soonest, so one second is
	// safe, and at any real request rate connections are reused well
	// within it.
	maxIdleAge time.Duration

	bufs connBuffers // pool.go

	mu    sync.Mutex
	idle  map[string][]*upstreamConn
	sweep *time.Timer // reaps expired idle connections; nil while the pool is empty
}

func newTransport(fallback *http.Transport) *transport {
	return &transport{
		fallback:   fallback,
		dialer:     net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:    fallback.MaxIdleConnsPerHost,
		maxIdleAge: time.Second,
		idle:       map[string][]*upstreamConn{},
	}
}

// maxInformational bounds the 1xx answers read before the real one. They
// are dropped: 103 Early Hints do not reach the client on this path.
const maxInformational = 8

// upstreamConn is one kept-alive connection to an upstream.
type upstreamConn struct {
	conn net.Conn
	// br is pooled (pool.go): nil while the connection is idle.
	br   *bufio.Reader
	addr string
	peek *peeker // sockcheck: the check before reuse
	// closeConn is conn.Close, made once: it runs when a request's
	// context ends mid-exchange.
	closeConn func()
	reused    bool
	since     time.Time // when it went idle
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if hasBody(req) || req.URL.Scheme != "http" || req.Header.Get("Upgrade") != "" || hasExpectContinue(req) {
		return t.fallback.RoundTrip(req)
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	return t.do(req, addr, leanHead{})
}

// roundTripLean sends the inbound request r, as head writes it, to addr
// (fastpath.go).
func (t *transport) roundTripLean(r *http.Request, addr string, head leanHead) (*http.Response, error) {
	return t.do(r, addr, head)
}

// do sends req (written by head when head.r is set, by Request.Write
// otherwise) over a pooled or new connection to addr and reads the answer.
func (t *transport) do(req *http.Request, addr string, head leanHead) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		// The retry dials afresh: the next pooled connection may be just as
		// dead (an app restart closes them all).
		pc, err := t.get(req.Context(), addr, attempt == 0)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(pc, req, head)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		// A kept-alive connection the upstream closed while idle fails
		// before any answer: a request that can be sent again is, once,
		// on a fresh connection (the standard transport does the same).
		if !pc.reused || attempt > 0 || !replayable(req) || req.Context().Err() != nil {
			return nil, err
		}
	}
}

func hasExpectContinue(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Expect"), "100-continue")
}

func hasBody(req *http.Request) bool { return req.Body != nil && req.Body != http.NoBody }

// replayable reports whether a request without a body may be sent again.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// exchange writes the request and reads the answer's head. The body is
// read by the caller through connBody, which returns the connection to the
// pool when it reaches a clean end.
func (t *transport) exchange(pc *upstreamConn, req *http.Request, head leanHead) (*http.Response, error) {
	stop := context.AfterFunc(req.Context(), pc.closeConn)
	if err := t.writeHead(pc, req, head); err != nil {
		stop()
		return nil, err
	}
	resp, err := http.ReadResponse(pc.br, req)
	// Informational answers (103 Early Hints, a stray 100) precede the real one.
	for n := 0; err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols; n++ {
		if n == maxInformational {
			err = fmt.Errorf("more than %d informational answers", maxInformational)
			break
		}
		resp, err = http.ReadResponse(pc.br, req)
	}
	if err != nil {
		stop()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	noBody := bodiless(req, resp)
	// The lean path never asks the app to close: the client's own
	// "Connection: close" is for sleeper's side only.
	reqClose := req.Close && head.r == nil
	reusable := !resp.Close && !reqClose && resp.StatusCode != http.StatusSwitchingProtocols && !noBody
	resp.Body = &connBody{ReadCloser: resp.Body, t: t, pc: pc, stop: stop, reuse: reusable, reset: noBody}
	return resp, nil
}

// writeHead writes the request with a pooled writer, held only for this.
func (t *transport) writeHead(pc *upstreamConn, req *http.Request, head leanHead) error {
	bw := t.bufs.writer(pc.conn)
	defer t.bufs.putWriter(bw)
	var err error
	if head.r != nil {
		err = head.write(bw)
	} else {
		err = req.Write(bw)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// bodiless reports an answer that has no body by definition: to HEAD, 204
// and 304. Its end cannot be checked, and a buggy app sends a body anyway,
// often in a write of its own just after the head (an app whose HEAD
// handler is its GET handler): such bytes may arrive after the connection
// went back to the pool and after the check in get (an app may compute the
// body after sending the head), and would then be read as the answer to
// the next request. The connection is not reused: the next request dials
// anew, about 70 µs more per such answer on loopback (SECURITY.md).
func bodiless(req *http.Request, resp *http.Response) bool {
	return req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
}

// connBody hands the connection back when the body has been read to its
// end, and closes it when the body is abandoned half-way.
type connBody struct {
	io.ReadCloser
	t     *transport
	pc    *upstreamConn
	stop  func() bool
	reuse bool
	// reset closes an unreused connection with a reset rather than a FIN,
	// which leaves no TIME_WAIT socket on sleeper's side: a FIN after every
	// HEAD, 204 and 304 would tie up an ephemeral port for a minute each,
	// and a few hundred such answers a second to one app would run out.
	reset bool
	done  bool
}

func (b *connBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.finish(true)
	}
	return n, err
}

func (b *connBody) Close() error {
	if !b.done {
		// Abandoned half-way: close the connection first, so that closing
		// the body does not read the rest of it (an endless stream).
		b.done = true
		b.finish(false)
	}
	return b.ReadCloser.Close()
}

func (b *connBody) finish(clean bool) {
	if b.stop() && clean && b.reuse {
		b.t.put(b.pc)
		return
	}
	// The request's context ended (AfterFunc already closed it), the body
	// was not read to its end, the upstream wants to close, or the answer
	// had no body to check its end by.
	if tc, ok := b.pc.conn.(*net.TCPConn); ok && b.reset {
		_ = tc.SetLinger(0)
	}
	b.pc.conn.Close()
}

func (t *transport) get(ctx context.Context, addr string, pooled bool) (*upstreamConn, error) {
	if pooled {
		if pc := t.pooled(addr); pc != nil {
			return pc, nil
		}
	}
	conn, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// A herd of held requests opens a connection each: the buffers are
	// pooled and held only while in use (pool.go).
	pc := &upstreamConn{conn: conn, addr: addr, br: t.bufs.reader(conn), peek: newPeeker(conn)}
	pc.closeConn = func() { pc.conn.Close() }
	return pc, nil
}

// pooled takes the newest idle connection to addr that is still quiet: the
// upstream has sent nothing on it since its last answer. Anything there
// (bytes the app sent after its answer, or its close) would otherwise be
// read as the next answer, so such a connection is closed, never reused.
func (t *transport) pooled(addr string) *upstreamConn {
	for {
		t.mu.Lock()
		list := t.idle[addr]
		if len(list) == 0 {
			t.mu.Unlock()
			return nil
		}
		// Newest first; when the newest is too old, all of them are.
		pc := list[len(list)-1]
		if time.Since(pc.since) > t.maxIdleAge {
			delete(t.idle, addr)
			t.mu.Unlock()
			for _, old := range list {
				old.conn.Close()
			}
			return nil
		}
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		t.mu.Unlock()
		if pc.peek.quiet() {
			pc.reused = true
			pc.br = t.bufs.reader(pc.conn)
			return pc
		}
		pc.conn.Close()
	}
}

func (t *transport) put(pc *upstreamConn) {
	if pc.br.Buffered() > 0 {
		// Bytes after the end of the answer: the connection is out of step.
		pc.conn.Close()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.idle[pc.addr]) >= t.maxIdle {
		pc.conn.Close()
		return
	}
	// The answer was read to its end with nothing after it: its body
	// reads no more, and the reader can serve another connection.
	t.bufs.putReader(pc.br)
	pc.br = nil
	pc.since = time.Now()
	t.idle[pc.addr] = append(t.idle[pc.addr], pc)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.maxIdleAge, t.reap)
	}
}

// reap closes pooled connections past their idle age. Published ports and
// IPs change on every wake, so a pool for an old address would otherwise
// keep its sockets forever; it re-arms while connections remain.
func (t *transport) reap() {
	var dead []*upstreamConn
	t.mu.Lock()
	now := time.Now()
	for addr, list := range t.idle {
		keep := list[:0]
		for _, pc := range list {
			if now.Sub(pc.since) > t.maxIdleAge {
				dead = append(dead, pc)
			} else {
				keep = append(keep, pc)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = keep
		}
	}
	if len(t.idle) > 0 {
		t.sweep.Reset(t.maxIdleAge)
	} else {
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, pc := range dead {
		pc.conn.Close()
	}
}

// CloseIdleConnections closes every pooled connection (and the fallback's).
func (t *transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*upstreamConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.conn.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}
