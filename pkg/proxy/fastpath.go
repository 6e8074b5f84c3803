package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// The lean path forwards the common request, a body-less HTTP/1.x request
// to an http upstream with nothing hop-by-hop in it but a plain
// "Connection: keep-alive|close", without httputil.ReverseProxy. The
// reverse proxy clones the request and its header for the upstream, sets
// the X-Forwarded-* headers on the clone, writes it with Request.Write and
// copies the answer's header value by value: about 30 of the 64
// allocations of a proxied request (BENCHMARKS.md). Here the inbound
// request, already parsed and validated by net/http's server (method
// token, Host, header names and values), is written to the upstream
// directly: a request line, Host, the inbound header through
// Header.WriteSubset (the standard library's header writer, which sorts
// and sanitises), and the X-Forwarded-* lines. The answer is still read
// by http.ReadResponse. Everything else (bodies, upgrades, Expect, TE,
// trailers in the request, odd Hosts or request targets, upstreams with a
// path or https) takes the ReverseProxy path, so their handling is the
// one the tests were written against.

// leanExclude are the inbound headers the lean path does not pass on:
// Connection (hop-by-hop; only keep-alive or close reach this path) and
// the forwarding headers, which it writes itself as ReverseProxy's
// Rewrite would (forwarded.go).
var leanExclude = map[string]bool{
	"Connection": true, "Forwarded": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
}

// leanRefused are inbound headers that send a request to the ReverseProxy
// path: hop-by-hop headers other than Connection, Expect, and
// Content-Length (a POST with an empty body gets "Content-Length: 0" from
// Request.Write, which the lean path would not write).
var leanRefused = []string{
	"Upgrade", "Te", "Trailer", "Transfer-Encoding", "Keep-Alive", "Proxy-Connection",
	"Proxy-Authenticate", "Proxy-Authorization", "Expect", "Content-Length",
}

// leanEligible reports whether r can take the lean path to target.
func leanEligible(r *http.Request, target *url.URL) bool {
	if r.ProtoMajor != 1 || hasBody(r) || target.Scheme != "http" || target.Path != "" || target.RawPath != "" ||
		target.RawQuery != "" || target.User != nil || target.Port() == "" || r.URL.Opaque != "" || !strings.HasPrefix(r.URL.Path, "/") {
		return false
	}
	for _, k := range leanRefused {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	if c, ok := r.Header["Connection"]; ok {
		if len(c) != 1 || !(strings.EqualFold(c[0], "keep-alive") || strings.EqualFold(c[0], "close")) {
			return false
		}
	}
	return plainHost(r.Host)
}

// plainHost reports a non-empty, printable ASCII Host without a zone:
// what Request.Write would send unchanged (it converts others to punycode
// and strips zones).
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '%' {
			return false
		}
	}
	return true
}

// leanHead writes the head of the request to the app.
type leanHead struct {
	r       *http.Request
	trusted bool // the peer is a trusted proxy (forwarded.go)
}

func (l leanHead) write(bw *bufio.Writer) error {
	r := l.r
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	// The request target as Request.Write writes it from the URL the
	// server parsed (URL.RequestURI without its allocation).
	bw.WriteString(r.URL.EscapedPath())
	if r.URL.ForceQuery || r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host) // the app sees the Host it was asked for
	bw.WriteString("\r\n")
	if err := r.Header.WriteSubset(bw, leanExclude); err != nil {
		return err
	}
	l.writeForwarded(bw)
	_, err := bw.WriteString("\r\n")
	return err
}

// writeForwarded writes the X-Forwarded-* lines as setXForwarded sets them:
// replaced for anyone, appended to and kept for a trusted proxy.
func (l leanHead) writeForwarded(bw *bufio.Writer) {
	r := l.r
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		if l.trusted {
			for _, v := range r.Header["X-Forwarded-For"] {
				writeHeaderValue(bw, v)
				bw.WriteString(", ")
			}
		}
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	l.writeKept(bw, "X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	l.writeKept(bw, "X-Forwarded-Proto", proto)
}

// writeKept writes the trusted proxy's own values of key, or else value.
func (l leanHead) writeKept(bw *bufio.Writer, key, value string) {
	if vs := l.r.Header[key]; l.trusted && len(vs) > 0 {
		for _, v := range vs {
			bw.WriteString(key)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
		return
	}
	bw.WriteString(key)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}

// writeHeaderValue writes a header value as Header.Write does: trimmed,
// with any CR or LF made a space (the server has refused those already).
func writeHeaderValue(bw *bufio.Writer, v string) {
	v = textproto.TrimString(v)
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			c = ' '
			bw.WriteByte(c)
		} else {
			bw.WriteByte(c)
		}
	}
}

// serveLean forwards a request that leanEligible accepted and copies the
// answer back as ReverseProxy does: hop-by-hop headers dropped, trailers
// passed on, event streams and bodies of unknown length flushed as they
// come, and a body cut short aborting the client's connection.
func (h *Handler) serveLean(rw http.ResponseWriter, r *http.Request, name string, target *url.URL) {
	resp, err := h.upstream.roundTripLean(r, target.Host, leanHead{r: r, trusted: h.trusted.trusts(r.RemoteAddr)})
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		err = errors.New("the app switched protocols without being asked to")
	}
	if err != nil {
		if r.Context().Err() == nil {
			upstreamFailed(rw, h.log.With("container", name, "upstream", target.String()), name, err)
		}
		return
	}
	defer resp.Body.Close()
	copyAnswerHeader(rw.Header(), resp)
	rw.WriteHeader(resp.StatusCode)
	if err := h.copyBody(rw, resp); err != nil {
		// As ReverseProxy does: a truncated answer must not look complete.
		panic(http.ErrAbortHandler)
	}
	if len(resp.Trailer) > 0 {
		if f, ok := rw.(http.Flusher); ok {
			f.Flush()
		}
		for k, vv := range resp.Trailer {
			k = http.TrailerPrefix + k
			for _, v := range vv {
				rw.Header().Add(k, v)
			}
		}
	}
}

// responseHop are the hop-by-hop headers of an answer (RFC 9110 7.6.1 and
// the ones ReverseProxy drops).
var responseHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// copyAnswerHeader moves the answer's end-to-end headers to dst (the
// answer is not used again, so its value slices are taken, not copied)
// and announces its trailers.
func copyAnswerHeader(dst http.Header, resp *http.Response) {
	for _, f := range resp.Header["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				resp.Header.Del(sf)
			}
		}
	}
	for k, vv := range resp.Header {
		if responseHop[k] {
			continue
		}
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
}

// copyBody copies the answer's body to the client with a pooled buffer
// sized to it, flushing after every write for event streams and bodies of
// unknown length, as ReverseProxy does.
func (h *Handler) copyBody(rw http.ResponseWriter, resp *http.Response) error {
	flush := resp.ContentLength == -1 || isEventStream(resp.Header.Get("Content-Type"))
	f, _ := rw.(http.Flusher)
	bp := h.copyBufs.get(resp.ContentLength)
	defer h.copyBufs.put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush && f != nil {
				f.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			h.log.Debug("upstream body cut short", "error", rerr)
			return fmt.Errorf("read the answer's body: %w", rerr)
		}
	}
}

// isEventStream reports a text/event-stream media type, parameters aside.
func isEventStream(ct string) bool {
	const es = "text/event-stream"
	ct = strings.TrimLeft(ct, " \t")
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	rest := ct[len(es):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}
