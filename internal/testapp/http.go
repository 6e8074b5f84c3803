package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds on query parameters, so a typo in a test cannot make the app stream forever.
const (
	maxStreamLines = 10000
	maxWait        = 10 * time.Minute
)

// newHandler serves the endpoints tests probe sleeper's proxy with. Every response
// carries X-App-Name, so a test behind a proxy can tell which backend answered.
func newHandler(name, unhealthyFile string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	mux.HandleFunc("/echo", handleEcho)
	mux.HandleFunc("/headers", handleHeaders)
	mux.HandleFunc("/stream", handleStream)
	mux.HandleFunc("/slow", handleSlow)
	mux.HandleFunc("/status/{code}", handleStatus)
	mux.HandleFunc("/upgrade", handleUpgrade)
	mux.HandleFunc("POST /burn", (&burner{}).handle)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if unhealthyFile != "" {
			if _, err := os.Stat(unhealthyFile); err == nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "unhealthy")
				return
			}
		}
		io.WriteString(w, "ok")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Name", name)
		mux.ServeHTTP(w, r)
	})
}

// gate applies ALLOWED_HOSTS and HEALTHY_AFTER in front of the handler:
// a Host outside the list gets 400 (as Django answers), and /healthz fails
// until HEALTHY_AFTER has passed since start while every other path answers.
func gate(h http.Handler, cfg config, start time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(cfg.AllowedHosts) > 0 {
			host := r.Host
			if hp, _, err := net.SplitHostPort(host); err == nil {
				host = hp
			}
			if !slices.Contains(cfg.AllowedHosts, strings.ToLower(host)) {
				http.Error(w, "Invalid HTTP_HOST header: "+r.Host, http.StatusBadRequest)
				return
			}
		}
		if r.URL.Path == "/healthz" && time.Since(start) < cfg.HealthyAfter {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handleEcho streams the request body back, for any method, so tests can check that a
// proxy forwards bodies (including large or chunked ones) unchanged.
func handleEcho(w http.ResponseWriter, r *http.Request) {
	// Without full duplex, Go's HTTP/1 server refuses to read the body once the
	// response has started, which would truncate echoes larger than one buffer.
	_ = http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("X-Method", r.Method)
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	io.Copy(w, r.Body)
}

// handleHeaders returns the request headers as a JSON object of lists. Go moves Host
// out of the header map; it is put back so tests can check what the proxy sent.
func handleHeaders(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}

// handleStream writes n lines, flushing each and waiting interval between them, so a
// test can tell a streaming proxy from one that buffers the whole response.
func handleStream(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "n", 5, 0, maxStreamLines)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	interval, err := durationParam(r, "interval", 200*time.Millisecond)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff") // browsers would buffer to sniff
	rc := http.NewResponseController(w)
	t := time.NewTicker(max(interval, time.Nanosecond))
	defer t.Stop()
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "line %d of %d\n", i, n)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// handleSlow answers after d, or gives up when the client goes away.
func handleSlow(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r, "d", time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "slept %s\n", d)
	case <-r.Context().Done():
	}
}

func handleStatus(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	// 1xx would be sent as an informational response followed by a 200: refuse them.
	if err != nil || code < 200 || code > 599 {
		http.Error(w, "status code must be 200-599", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "status %d\n", code)
}

// handleUpgrade implements a tiny upgraded protocol, "echo": after the 101 every byte
// is sent back until the client closes. It exercises a proxy's Upgrade path exactly
// like a websocket would, without needing a websocket library on either side.
func handleUpgrade(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		http.Error(w, "send Connection: Upgrade and Upgrade: echo", http.StatusUpgradeRequired)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	// The server's read deadlines belong to HTTP; an upgraded stream may idle.
	_ = conn.SetDeadline(time.Time{})
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	// Read through brw: the client may have sent bytes right behind its request,
	// and those already sit in the server's buffer.
	_, _ = io.Copy(conn, brw.Reader)
}

// headerHasToken reports whether a comma-separated header contains token, ignoring
// case, as RFC 9110 requires for Connection.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

func intParam(r *http.Request, key string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer %d-%d", key, v, lo, hi)
	}
	return n, nil
}

func durationParam(r *http.Request, key string, def time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxWait {
		return 0, fmt.Errorf("%s=%q: want a Go duration from 0 to %v", key, v, maxWait)
	}
	return d, nil
}
