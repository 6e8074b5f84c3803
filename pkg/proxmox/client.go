// Package proxmox drives Proxmox VE LXC guests for sleeper: a small client of
// the PVE API on net/http, a Runtime that puts guests behind the watcher's
// Runtime interface, and a Poller that stands in for the event stream PVE
// does not have.
//
// Policy: every API call has its own timeout (Config.Timeout) under the
// caller's context, and nothing is retried inside the client: the watcher
// and the poller decide when to try again. Errors keep PVE's own words (the
// reason phrase and the body's message) and match the package's sentinels
// with errors.Is. The client never changes a guest's configuration: it only
// reads status, starts, shuts down and stops.
//
// Ownership: the Client holds only an http.Client; the Poller's Run owns the
// one polling loop and returns when its context ends; a Runtime owns no
// goroutine at all.
package proxmox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultTimeout bounds one API call when Config.Timeout is zero. It is well
// above the 3 s pveproxy waits before answering an unauthorized call, so a
// wrong token is reported as such rather than as a timeout.
const DefaultTimeout = 10 * time.Second

// maxBody bounds what is read of an answer: the largest one sleeper asks
// for is the cluster's resource list.
const maxBody = 8 << 20

// Config builds a Client.
type Config struct {
	// URL of the API, "https://pve1.example.com:8006"; "/api2/json" is
	// appended unless the path already ends with it.
	URL string
	// TokenID is the API token's full id, "user@realm!tokenid".
	TokenID string
	// Secret is the token's secret (a UUID).
	Secret string
	// CAFile is a PEM file of the CA (or the self-signed certificate) that
	// signed the server's certificate, instead of the system roots.
	CAFile string
	// Fingerprint pins the SHA-256 fingerprint of the server's certificate,
	// hex with or without colons, as the PVE UI shows it. With it the chain
	// is not checked against the system roots (PVE's own certificate is
	// self-signed); with CAFile too, both must hold.
	Fingerprint string
	// InsecureTLS skips certificate verification altogether. It is logged
	// as a warning, and cannot be combined with CAFile or Fingerprint.
	InsecureTLS bool
	// Timeout bounds each API call; DefaultTimeout when zero.
	Timeout time.Duration
	// Log receives warnings and debug lines; required.
	Log *slog.Logger
}

// Client calls the PVE API with an API token. It is safe for concurrent use.
type Client struct {
	base    string // scheme://host[:port][/prefix]/api2/json, no trailing slash
	auth    string
	timeout time.Duration
	http    *http.Client
	log     *slog.Logger
}

// New validates cfg and returns a client. It does not dial: a PVE host that
// is down now fails the calls made later, never sleeper's start.
func New(cfg Config) (*Client, error) {
	if cfg.Log == nil {
		return nil, errors.New("proxmox: no logger")
	}
	base, err := baseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := checkTokenID(cfg.TokenID); err != nil {
		return nil, err
	}
	secret := strings.TrimSpace(cfg.Secret)
	if secret == "" {
		return nil, errors.New("proxmox: empty token secret")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log.With("proxmox_url", base.Redacted())
	if cfg.InsecureTLS {
		log.Warn("proxmox TLS certificate verification is off (--proxmox-insecure-tls): " +
			"anyone on the path can read the API token; prefer a CA file or a pinned fingerprint")
	}
	if base.Scheme == "http" && !isLoopbackHost(base.Host) {
		log.Warn("proxmox URL is plain http: the API token travels unencrypted")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 4
	// PVE's messages live in the HTTP/1.1 reason phrase, which HTTP/2 does
	// not have; pveproxy speaks HTTP/1.1 anyway.
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr.Protocols = &protos
	return &Client{
		base:    strings.TrimSuffix(base.String(), "/"),
		auth:    "PVEAPIToken=" + cfg.TokenID + "=" + secret,
		timeout: cfg.Timeout,
		http:    &http.Client{Transport: tr},
		log:     log,
	}, nil
}

// baseURL accepts whatever scheme the user wrote, http or https: plain http
// is for a TLS-terminating proxy in front of PVE, and for tests.
func baseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("proxmox url %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("proxmox url %q: want https://host:8006", raw)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxmox url %q: want https://host:8006 without credentials, query or fragment", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api2/json") {
		u.Path += "/api2/json"
	}
	u.RawPath = ""
	return u, nil
}

func checkTokenID(id string) error {
	user, token, ok := strings.Cut(id, "!")
	name, realm, okRealm := strings.Cut(user, "@")
	if !ok || !okRealm || name == "" || realm == "" || token == "" || strings.ContainsAny(id, " =") {
		return fmt.Errorf("proxmox token id %q: want user@realm!tokenid, e.g. sleeper@pve!sleeper", id)
	}
	return nil
}

// tlsConfig builds the verification the user asked for.
func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.InsecureTLS && (cfg.CAFile != "" || cfg.Fingerprint != "") {
		return nil, errors.New("proxmox: insecure TLS cannot be combined with a CA file or a fingerprint")
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("proxmox ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("proxmox ca file %s: no PEM certificate in it", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.Fingerprint != "" {
		want, err := parseFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, err
		}
		// The standard verification is replaced, not skipped: the pin is
		// checked below, plus the chain when a CA file is given.
		tc.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection
		tc.VerifyConnection = pinVerifier(want, tc.RootCAs)
	}
	if cfg.InsecureTLS {
		tc.InsecureSkipVerify = true //nolint:gosec // the user's explicit choice, logged
	}
	return tc, nil
}

func parseFingerprint(s string) ([]byte, error) {
	clean := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("proxmox fingerprint %q: want the 32-byte SHA-256 in hex, with or without colons", s)
	}
	return b, nil
}

// pinVerifier checks the leaf certificate's SHA-256, and the chain up to
// roots when there are any.
func pinVerifier(want []byte, roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: no certificate presented", ErrFingerprintMismatch)
		}
		got := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if !bytes.Equal(got[:], want) {
			return fmt.Errorf("%w: got %s, pinned %s", ErrFingerprintMismatch, formatFingerprint(got[:]), formatFingerprint(want))
		}
		if roots == nil {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, DNSName: cs.ServerName,
		})
		return err
	}
}

// formatFingerprint writes a fingerprint as PVE's UI does: AB:CD:….
func formatFingerprint(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	parts := make([]string, 0, len(h)/2)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// CloseIdleConnections releases kept-alive connections to PVE.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// get calls GET path?query and decodes the envelope's data into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, query, nil, out)
}

// post calls POST path with a form-encoded body, as the PVE UI does.
func (c *Client) post(ctx context.Context, path string, form url.Values, out any) error {
	return c.do(ctx, http.MethodPost, path, nil, form, out)
}

func (c *Client) do(parent context.Context, method, path string, query, form url.Values, out any) error {
	ctx, cancel := context.WithTimeoutCause(parent, c.timeout,
		fmt.Errorf("no answer within %s", c.timeout))
	defer cancel()
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("proxmox %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "application/json")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && parent.Err() == nil {
			// Our own per-call timeout: say so, rather than "context
			// deadline exceeded", which reads like the caller's.
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return fmt.Errorf("proxmox %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.log.Debug("proxmox call", "method", method, "path", path, "status", resp.StatusCode,
		"ms", time.Since(start).Milliseconds())
	if err != nil {
		return fmt.Errorf("proxmox %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newAPIError(method, path, resp, raw)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("proxmox %s %s: decode answer: %w", method, path, err)
	}
	if out == nil || len(env.Data) == 0 || string(env.Data) == "null" {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("proxmox %s %s: decode data: %w", method, path, err)
	}
	return nil
}

// newAPIError keeps PVE's words: the reason phrase of the status line and
// whatever message or parameter errors the body carries.
func newAPIError(method, path string, resp *http.Response, raw []byte) *APIError {
	reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode)))
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode, Reason: reason}
	var body struct {
		Message string            `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Message = strings.TrimSpace(body.Message)
		if len(body.Errors) > 0 {
			e.Message = joinFieldErrors(e.Message, body.Errors)
		}
	}
	return e
}

func joinFieldErrors(msg string, errs map[string]string) string {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys)+1)
	if msg != "" {
		parts = append(parts, msg)
	}
	for _, k := range keys {
		parts = append(parts, k+": "+strings.TrimSpace(errs[k]))
	}
	return strings.Join(parts, "; ")
}

// isLoopbackHost reports whether a URL host is a loopback address.
func isLoopbackHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}
