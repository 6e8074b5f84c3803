package proxmox

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sleeper/pkg/proxmox/pvefake"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	log, _ := testLogger(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Config{URL: "https://pve1:8006", TokenID: "sleeper@pve!sleeper", Secret: "s", Log: log}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
		base    string
	}{
		{name: "minimal", mod: func(*Config) {}, base: "https://pve1:8006/api2/json"},
		{name: "api path kept", mod: func(c *Config) { c.URL = "https://pve1:8006/api2/json/" }, base: "https://pve1:8006/api2/json"},
		{name: "proxy prefix", mod: func(c *Config) { c.URL = "https://proxy/pve" }, base: "https://proxy/pve/api2/json"},
		{name: "plain http accepted", mod: func(c *Config) { c.URL = "http://127.0.0.1:8006" }, base: "http://127.0.0.1:8006/api2/json"},
		{name: "no scheme", mod: func(c *Config) { c.URL = "pve1:8006" }, wantErr: "want https://host:8006"},
		{name: "query", mod: func(c *Config) { c.URL = "https://pve1:8006/?x=1" }, wantErr: "without credentials"},
		{name: "empty token", mod: func(c *Config) { c.TokenID = "" }, wantErr: "want user@realm!tokenid"},
		{name: "token without realm", mod: func(c *Config) { c.TokenID = "sleeper!tok" }, wantErr: "want user@realm!tokenid"},
		{name: "token without name", mod: func(c *Config) { c.TokenID = "sleeper@pve" }, wantErr: "want user@realm!tokenid"},
		{name: "empty secret", mod: func(c *Config) { c.Secret = " \n" }, wantErr: "empty token secret"},
		{name: "short fingerprint", mod: func(c *Config) { c.Fingerprint = "AB:CD" }, wantErr: "32-byte SHA-256"},
		{name: "insecure and pinned", mod: func(c *Config) {
			c.InsecureTLS, c.Fingerprint = true, strings.Repeat("ab", 32)
		}, wantErr: "cannot be combined"},
		{name: "missing ca file", mod: func(c *Config) { c.CAFile = filepath.Join(dir, "nope.pem") }, wantErr: "proxmox ca file"},
		{name: "ca file without pem", mod: func(c *Config) { c.CAFile = notPEM }, wantErr: "no PEM certificate"},
		{name: "no logger", mod: func(c *Config) { c.Log = nil }, wantErr: "no logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.base != tt.base {
				t.Errorf("base %q, want %q", c.base, tt.base)
			}
		})
	}
}

// TestWireFormat checks what goes over the wire against a plain recorder:
// the token header, the form-encoded body with 0/1 booleans, the paths.
func TestWireFormat(t *testing.T) {
	t.Parallel()
	type seen struct{ method, path, auth, ctype, body string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/status/current") {
			// PVE's JSON sometimes carries numbers as strings.
			_, _ = io.WriteString(w, `{"data":{"vmid":"101","name":"ct","status":"running","uptime":"42"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":"UPID:pve1:0000A1B2:00C0FFEE:6543A1B2:vzshutdown:101:a@pve!t:"}`)
	}))
	t.Cleanup(srv.Close)
	log, _ := testLogger(t)
	c, err := New(Config{URL: srv.URL, TokenID: "a@pve!t", Secret: "s3cr3t", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if _, err := c.Shutdown(ctx, "pve 1", 101, 1500*time.Millisecond, false); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	st, err := c.Status(ctx, "pve1", 101)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.VMID != 101 || st.Uptime != 42*time.Second || !st.Running() || st.Name != "ct" {
		t.Errorf("Status = %+v", st)
	}
	want := []seen{
		{"POST", "/api2/json/nodes/pve%201/lxc/101/status/shutdown", "PVEAPIToken=a@pve!t=s3cr3t",
			"application/x-www-form-urlencoded", "forceStop=0&timeout=2"},
		{"GET", "/api2/json/nodes/pve1/lxc/101/status/current", "PVEAPIToken=a@pve!t=s3cr3t", "", ""},
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("requests %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestUnauthorizedIsFastAndClear(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{UnauthorizedDelay: 10 * time.Millisecond})
	tests := []struct {
		name, tokenID, secret, reason string
	}{
		// A real node says only this, with an empty body, whatever was wrong.
		{"wrong secret", f.TokenID(), "wrong", "Authentication failed!"},
		{"unknown token", "sleeper@pve!other", f.Secret(), "Authentication failed!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, f, func(c *Config) { c.TokenID, c.Secret = tt.tokenID, tt.secret })
			_, err := c.Status(testContext(t), "pve1", 101)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("err %v, want ErrUnauthorized", err)
			}
			var api *APIError
			if !errors.As(err, &api) || api.Status != 401 || api.Reason != tt.reason {
				t.Fatalf("err %#v, want a 401 with reason %q", err, tt.reason)
			}
			// The reason tells the user nothing: the error says what to check.
			if !strings.Contains(err.Error(), "token id and secret") {
				t.Fatalf("err %q does not say what to check", err)
			}
		})
	}
}

func TestErrorsFromReasonPhrase(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	if err := f.SetRunning("pve1", 101, true); err != nil {
		t.Fatal(err)
	}
	f.AddLXC("pve1", 102, "stopped", guestAddr)
	c := newClient(t, f, nil)
	ctx := testContext(t)
	tests := []struct {
		name     string
		call     func() error
		sentinel error
		status   int
		reason   string
		message  string
	}{
		{"start running", func() error { _, err := c.Start(ctx, "pve1", 101); return err },
			ErrAlreadyRunning, 500, "CT 101 already running", "CT 101 already running"},
		{"stop stopped", func() error { _, err := c.Stop(ctx, "pve1", 102); return err },
			ErrNotRunning, 500, "CT 102 not running", "CT 102 not running"},
		{"shutdown stopped", func() error { _, err := c.Shutdown(ctx, "pve1", 102, time.Second, false); return err },
			ErrNotRunning, 500, "CT 102 not running", "CT 102 not running"},
		{"unknown vmid", func() error { _, err := c.Status(ctx, "pve1", 999); return err },
			ErrNotFound, 500, "Configuration file 'nodes/pve1/lxc/999.conf' does not exist", ""},
		{"unknown node", func() error { _, err := c.Interfaces(ctx, "pve9", 101); return err },
			ErrNotFound, 500, "hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known", ""},
		{"unknown task", func() error {
			_, err := c.TaskStatus(ctx, "pve1", "UPID:pve1:00000001:00000001:00000001:vzstart:101:x@pve!y:")
			return err
		},
			ErrNotFound, 400, "Parameter verification failed.", "upid: no such task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call()
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err %v, want %v", err, tt.sentinel)
			}
			var api *APIError
			if !errors.As(err, &api) {
				t.Fatalf("err %T, want *APIError", err)
			}
			if api.Status != tt.status || api.Reason != tt.reason {
				t.Errorf("got %d %q, want %d %q", api.Status, api.Reason, tt.status, tt.reason)
			}
			if tt.message != "" && api.Message != tt.message {
				t.Errorf("message %q, want %q", api.Message, tt.message)
			}
			for _, other := range []error{ErrUnauthorized, ErrNotFound, ErrAlreadyRunning, ErrNotRunning} {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Errorf("err %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  APIError
		want string
	}{
		{APIError{Method: "POST", Path: "/x", Status: 500, Reason: "CT 1 not running", Message: "CT 1 not running"},
			"proxmox POST /x: 500 CT 1 not running"},
		{APIError{Method: "GET", Path: "/t", Status: 400, Reason: "Parameter verification failed.", Message: "upid: no such task"},
			"proxmox GET /t: 400 Parameter verification failed.: upid: no such task"},
		{APIError{Method: "GET", Path: "/y", Status: 403},
			"proxmox GET /y: 403 Forbidden"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	caFile := filepath.Join(t.TempDir(), "pve.pem")
	if err := os.WriteFile(caFile, f.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	plain := strings.ToLower(strings.ReplaceAll(f.Fingerprint(), ":", ""))
	wrong := strings.Repeat("00", 32)
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr error  // nil: the call must succeed
		errText string // for errors without a sentinel
	}{
		{name: "pinned, colons", mod: func(c *Config) {}},
		{name: "pinned, plain lower-case hex", mod: func(c *Config) { c.Fingerprint = plain }},
		{name: "pinned plus ca file", mod: func(c *Config) { c.CAFile = caFile }},
		{name: "ca file", mod: func(c *Config) { c.Fingerprint, c.CAFile = "", caFile }},
		{name: "insecure", mod: func(c *Config) { c.Fingerprint, c.InsecureTLS = "", true }},
		{name: "wrong pin", mod: func(c *Config) { c.Fingerprint = wrong }, wantErr: ErrFingerprintMismatch},
		{name: "system roots", mod: func(c *Config) { c.Fingerprint = "" }, errText: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, f, tt.mod)
			_, err := c.Status(testContext(t), "pve1", 101)
			switch {
			case tt.wantErr == nil && tt.errText == "":
				if err != nil {
					t.Fatalf("Status: %v", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err %v, want one about %q", err, tt.errText)
				}
			}
		})
	}
}

func TestInsecureLogsOneWarning(t *testing.T) {
	t.Parallel()
	f := newFake(t, pvefake.Config{})
	log, buf := testLogger(t)
	c := newClient(t, f, func(c *Config) { c.Fingerprint, c.InsecureTLS, c.Log = "", true, log })
	ctx := testContext(t)
	for range 3 {
		if _, err := c.Status(ctx, "pve1", 101); err != nil {
			t.Fatal(err)
		}
	}
	if n := buf.Count("level=WARN msg=\"proxmox TLS certificate verification is off"); n != 1 {
		t.Errorf("%d warnings, want 1; log:\n%s", n, buf)
	}
}

func TestCallTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // a PVE that never answers
	}))
	t.Cleanup(srv.Close)
	log, _ := testLogger(t)
	c, err := New(Config{URL: srv.URL, TokenID: "a@pve!t", Secret: "s", Timeout: 50 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Resources(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("err %v, want the per-call timeout", err)
	}
}
