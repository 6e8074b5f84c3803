package watcher

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"sleeper/pkg/healthcmd"
	"sleeper/pkg/labels"
)

// prober checks readiness. Its HTTP client never reuses connections: each
// probe must reach the app afresh, and a kept-alive socket to docker-proxy
// would say nothing about the app behind it.
type prober struct {
	client *http.Client
	proc   string // where the host's process table is mounted (tests: a fake)
}

func newProber() *prober {
	tr := &http.Transport{
		DisableKeepAlives: true,
		// Upstreams on https are containers with their own, usually
		// self-signed, certificates; the proxy does not verify them either.
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // documented in docs/behaviour.md
		ResponseHeaderTimeout: 2 * time.Second,
		Proxy:                 nil,
	}
	return &prober{proc: procRoot, client: &http.Client{
		Transport: tr,
		Timeout:   2 * time.Second,
		// A redirect is an answer: the app is up.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (p *prober) close() { p.client.CloseIdleConnections() }

// http returns a probe that is ready on any HTTP answer, or on a 2xx/3xx
// from readyPath when one is set. docker-proxy accepts on a published port
// before the app listens, then closes: that is a failed request, not an answer.
// host, when set, is sent as the Host header: apps with an allowed-hosts list
// (Django, Nextcloud's trusted_domains) refuse the bare address with 400.
func (p *prober) http(u *url.URL, readyPath, host string) func(context.Context) bool {
	target := *u
	if readyPath != "" {
		ref, err := url.Parse(readyPath)
		if err == nil {
			target.Path, target.RawQuery = ref.Path, ref.RawQuery
		}
	}
	raw := target.String()
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return false
		}
		req.Header.Set("User-Agent", "sleeper-probe")
		if host != "" {
			req.Host = host
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if readyPath == "" {
			return true
		}
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	}
}

// probeHost is the Host a ready_path probe sends: the upstream label's own
// host, else the container's first host name that is not a wildcard, else
// "" (the address dialled).
func probeHost(spec *labels.Spec) string {
	if spec.Upstream != nil {
		return spec.Upstream.Host
	}
	for _, h := range spec.Hosts {
		if !strings.HasPrefix(h, "*.") {
			return h
		}
	}
	return ""
}

// maxHops bounds the redirects a health check that follows them may take.
const maxHops = 10

// check returns a probe that runs a health test's URL fetch against addr
// (where sleeper reaches the URL's port of the container) with the tool's
// method, headers, Host and success rule. A redirect is followed, as the
// tool would, only within the same host; one to another host is not ready.
func (p *prober) check(chk healthcmd.Check, addr string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		logical := chk.URL
		for range maxHops {
			status, loc, ok := p.fetch(ctx, chk, logical, addr)
			switch {
			case !ok:
				return false
			case !chk.Follow || status < 300 || status > 399 || loc == "":
				return chk.OK(status)
			}
			next, err := logical.Parse(loc)
			if err != nil || next.Host != logical.Host || next.Scheme != logical.Scheme {
				return false
			}
			logical = next
		}
		return false
	}
}

// fetch sends one request of a health check for logical's path to addr.
func (p *prober) fetch(ctx context.Context, chk healthcmd.Check, logical *url.URL, addr string) (int, string, bool) {
	target := *logical
	target.Host = addr
	req, err := http.NewRequestWithContext(ctx, chk.Method, target.String(), nil)
	if err != nil {
		return 0, "", false
	}
	req.Header.Set("User-Agent", "sleeper-probe")
	for k, vs := range chk.Header {
		req.Header[k] = vs
	}
	req.Host = chk.Host // a followed redirect stays on the same host
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), true
}

// tcp returns a probe for containers without HTTP, on the first TCP
// stream's target port, and whether it reads the app's listening sockets.
// When sleeper sees the container's process (see containerSockets), the
// port is ready once a socket listens on it on an address a client can
// reach and a dial to it is taken (the proxy of a published port listens
// too): cheap file reads, no waiting. Otherwise see hangupProbe.
func (p *prober) tcp(c Container, spec *labels.Spec, self []string) (func(context.Context) bool, bool) {
	port := TargetPort(c, spec)
	for _, s := range spec.Streams {
		if s.Protocol == labels.TCP {
			port = s.Target
			break
		}
	}
	addr, err := ResolveAddr(c, port, "tcp", spec.Network, self)
	if err != nil {
		// Nothing sleeper can dial (a dependency on a network sleeper
		// does not share, no port published): running has to do.
		return func(context.Context) bool { return true }, false
	}
	hangup := hangupProbe(addr)
	socks, ok := containerSockets(p.proc, c)
	if !ok {
		return hangup, false
	}
	var d net.Dialer
	return func(ctx context.Context) bool {
		v, err := socks.verdict(port, c)
		if err != nil {
			return hangup(ctx) // the process is gone or hidden: time decides
		}
		switch v {
		case listenNone:
			return false
		case listenUnknown:
			return hangup(ctx)
		}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	}, true
}

// hangupProbe dials addr for a container whose sockets sleeper cannot see.
// Through the proxy of a published port a dial always succeeds, so the
// probe also waits for the proxy to hang up: a live app keeps the
// connection open (or greets us), a missing one gets it closed at once.
// How long to wait is learnt within the wake (see hangupWait). A refused
// dial says nothing about what follows: the proxy may not listen yet right
// after a start, under load, and accept a moment later.
func hangupProbe(addr string) func(context.Context) bool {
	var d net.Dialer
	// Probes of one wake run one after another: plain variables do.
	var slowest time.Duration // the slowest proxy hang-up seen
	hangups := 0              // how many were seen
	return func(ctx context.Context) bool {
		conn, derr := d.DialContext(ctx, "tcp", addr)
		if derr != nil {
			return false
		}
		defer conn.Close()
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(hangupWait(slowest, hangups)))
		var b [1]byte
		_, rerr := conn.Read(b[:])
		if rerr == nil || errors.Is(rerr, os.ErrDeadlineExceeded) {
			return true
		}
		slowest = max(slowest, time.Since(start))
		hangups++
		return false
	}
}

// hangupWait is how long a probe through docker-proxy waits for the proxy
// to hang up before calling the app there: 50 ms until five hang-ups have
// been seen, then four times the slowest seen in this wake, at least 15 ms.
// A fixed 50 ms made every TCP wake that much slower than the app; the
// proxy's own hang-ups say how long it takes on this machine, under this
// load. The floor is for their long tail: under load single hang-ups ten
// times slower than the hundred before them were measured, and a 5 ms floor
// let one through as "ready".
func hangupWait(slowest time.Duration, seen int) time.Duration {
	const enough = 5
	if seen < enough {
		return 50 * time.Millisecond
	}
	return min(max(4*slowest, 15*time.Millisecond), 50*time.Millisecond)
}
