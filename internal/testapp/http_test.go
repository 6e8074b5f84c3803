package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T, unhealthyFile string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newHandler("t1", unhealthyFile))
	t.Cleanup(srv.Close)
	return srv
}

func TestHandlerSimple(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, "")
	tests := []struct {
		method, path, body string
		wantCode           int
		wantBody           string
		wantHeader         map[string]string
	}{
		{method: "GET", path: "/", wantCode: 200, wantBody: "hello from t1\n", wantHeader: map[string]string{"X-App-Name": "t1"}},
		{method: "HEAD", path: "/", wantCode: 200, wantBody: ""},
		{method: "POST", path: "/", wantCode: 405},
		{method: "GET", path: "/nope", wantCode: 404, wantHeader: map[string]string{"X-App-Name": "t1"}},
		{method: "PUT", path: "/echo", body: "payload", wantCode: 200, wantBody: "payload", wantHeader: map[string]string{"X-Method": "PUT"}},
		{method: "GET", path: "/status/418", wantCode: 418, wantBody: "status 418\n"},
		{method: "GET", path: "/status/204", wantCode: 204, wantBody: ""},
		{method: "GET", path: "/status/99", wantCode: 400},
		{method: "GET", path: "/slow?d=10ms", wantCode: 200, wantBody: "slept 10ms\n"},
		{method: "GET", path: "/slow?d=forever", wantCode: 400},
		{method: "GET", path: "/stream?n=x", wantCode: 400},
		{method: "GET", path: "/healthz", wantCode: 200, wantBody: "ok"},
		{method: "GET", path: "/upgrade", wantCode: 426, wantHeader: map[string]string{"Upgrade": "echo"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d (body %q)", resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantCode == 200 || tt.wantBody != "" {
				if string(body) != tt.wantBody {
					t.Errorf("body = %q, want %q", body, tt.wantBody)
				}
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHealthzUnhealthyFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "unhealthy")
	srv := newTestServer(t, file)
	get := func() int {
		resp, err := srv.Client().Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != 200 {
		t.Fatalf("without the file: status %d, want 200", got)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != 503 {
		t.Fatalf("with the file: status %d, want 503", got)
	}
}

func TestHeadersIncludesHost(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, "")
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/headers", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Host = "example.test"
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h http.Header
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("Host") != "example.test" {
		t.Errorf("headers = %v, want X-Forwarded-Proto https and Host example.test", h)
	}
}

func TestStreamFlushesEachLine(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, "")
	// The second line is ten minutes away: a buffered stream would hold back
	// the first one too, and the read below would never see it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream?n=2&interval=10m", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatalf("no first line before the deadline: the stream is buffered (%v)", sc.Err())
	}
	if got := sc.Text(); got != "line 1 of 2" {
		t.Fatalf("first line %q, want %q", got, "line 1 of 2")
	}
}

func TestUpgradeEchoes(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, "")
	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Bytes right behind the request must be echoed too (they land in the server's buffer).
	io.WriteString(conn, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\nearly")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("response %s, Upgrade %q; want 101 and echo", resp.Status, resp.Header.Get("Upgrade"))
	}
	io.WriteString(conn, "-late")
	buf := make([]byte, len("early-late"))
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "early-late" {
		t.Errorf("echoed %q, want %q", buf, "early-late")
	}
}

func TestGateAllowedHostsAndHealthyAfter(t *testing.T) {
	t.Parallel()
	cfg := config{AllowedHosts: []string{"app.example.com"}, HealthyAfter: time.Hour}
	srv := httptest.NewServer(gate(newHandler("t1", ""), cfg, time.Now()))
	t.Cleanup(srv.Close)
	get := func(host, path string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Host = host
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("127.0.0.1", "/"); c != http.StatusBadRequest {
		t.Errorf("address as Host: %d, want 400", c)
	}
	if c := get("app.example.com:8080", "/"); c != http.StatusOK {
		t.Errorf("allowed host: %d, want 200", c)
	}
	if c := get("app.example.com", "/healthz"); c != http.StatusServiceUnavailable {
		t.Errorf("healthz before HEALTHY_AFTER: %d, want 503", c)
	}
}
