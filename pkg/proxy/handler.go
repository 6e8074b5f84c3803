// Package proxy is sleeper's front door: HTTP routed by Host (and the extra
// listen ports), built on httputil.ReverseProxy.
//
// Policy: a request for a ready container is forwarded at once (Acquire,
// forward, Release: no lock). For a container that is not ready, wake_paths
// decides first (other paths get 503), then a browser navigation gets the
// loading page while the wake runs in the background (loading.go, sse.go).
// Any other request is held, body untouched, until the shared wake of its
// container ends, within wake_timeout; a failure or a refusal (past
// --max-held) is answered as watcher.Answer maps it, with a short public
// reason and never the error's own text.
// The proxy never starts or stops anything itself; it asks the watcher.
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/puzpuzpuz/xsync/v4"

	"sleeper/pkg/watcher"
)

// ReservedPrefix is the path prefix sleeper answers itself on every routed host.
const ReservedPrefix = "/.sleeper/"

// Routes is what the proxy needs of the registry.
type Routes interface {
	Routes() *watcher.Routes
	Changed() <-chan struct{}
}

// Config builds a Handler.
type Config struct {
	Routes   Routes
	MaxHeld  int
	Log      *slog.Logger
	Recorder watcher.Recorder
	// Discovered is closed when sleeper's first discovery is done; until
	// then a request for an unknown host waits for it, at most
	// DiscoveryWait (discovery.go). Nil: no waiting.
	Discovered <-chan struct{}
	// TrustedProxies are the peers whose X-Forwarded-* headers are kept
	// (forwarded.go); none by default.
	TrustedProxies []netip.Prefix
	// IgnoreAgents are --ignore-agents: lower-case User-Agent substrings
	// whose requests neither wake nor count as activity (ignore.go), for
	// every container; the ignore_* labels add to them. Nil: none.
	IgnoreAgents []string
}

// Handler routes and forwards HTTP requests.
type Handler struct {
	routes  Routes
	maxHeld int64
	log     *slog.Logger
	rec     watcher.Recorder
	trusted trustedProxies
	// ignoreAgents is Config.IgnoreAgents (ignore.go).
	ignoreAgents []string
	transport    *http.Transport // the standard transport, for what upstream does not handle
	upstream     *transport
	// proxies caches one ReverseProxy per watcher and upstream, so the hot
	// path builds nothing; a wake that changes the upstream replaces it.
	proxies *xsync.Map[*watcher.Watcher, *upstreamProxy]
	// buffers are the copy buffers of every ReverseProxy: without a pool each
	// response body copy allocates 32 KiB.
	buffers bufferPool
	// copyBufs are the lean path's copy buffers (fastpath.go, pool.go).
	copyBufs copyBuffers
	// closing is closed by Shutdown: long-lived event streams end then,
	// while proxied requests are left to finish within the grace period.
	closing     chan struct{}
	closingOnce sync.Once
	// clientPoll is how often a held request with a body checks that its
	// client is still there (clientgone.go).
	clientPoll time.Duration
	// loading is the loading page and its endpoints (loading.go, sse.go);
	// its zero value is ready to use.
	loading loadingState
	// discovery holds unknown hosts during the first discovery (discovery.go).
	discovery discovery
}

type upstreamProxy struct {
	target *url.URL
	rp     *httputil.ReverseProxy
}

// NewHandler returns a handler over the given routes.
func NewHandler(cfg Config) *Handler {
	rec := cfg.Recorder
	if rec == nil {
		rec = watcher.NopRecorder{}
	}
	h := &Handler{
		routes:  cfg.Routes,
		maxHeld: int64(cfg.MaxHeld),
		log:     cfg.Log,
		rec:     rec,
		trusted: cfg.TrustedProxies,
		// Copied: the caller's slice is read on every request.
		ignoreAgents: slices.Clone(cfg.IgnoreAgents),
		transport: &http.Transport{
			Proxy:               nil, // upstreams are local; never via an env proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			// The client's Accept-Encoding passes through untouched; without
			// this the transport would add gzip and decompress behind the
			// app's back.
			DisableCompression:    true,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Upstreams on https are containers with their own, usually
			// self-signed, certificates (docs/behaviour.md, "Routes").
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // documented
		},
		proxies:    xsync.NewMap[*watcher.Watcher, *upstreamProxy](),
		closing:    make(chan struct{}),
		clientPoll: defaultClientPoll,
	}
	h.discovery = discovery{ready: cfg.Discovered, wait: DiscoveryWait}
	h.upstream = newTransport(h.transport)
	return h
}

// Shutdown ends the event streams of loading pages (they would otherwise
// hold a graceful shutdown for its whole grace period); browsers reconnect
// to the next sleeper.
func (h *Handler) Shutdown() { h.closingOnce.Do(func() { close(h.closing) }) }

// ServeHTTP routes by Host.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	host := normalizeHost(r.Host)
	w := h.routes.Routes().Lookup(host)
	if w == nil {
		w = h.lookupAfterDiscovery(r.Context(), host)
	}
	if w == nil {
		http.Error(rw, fmt.Sprintf("sleeper: no container for host %q", host), http.StatusNotFound)
		return
	}
	h.Serve(w, rw, r)
}

// ForPort returns a handler for a sleeper.listen port: every request goes to
// the container that claims the port, whatever its Host.
func (h *Handler) ForPort(port uint16) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := h.routes.Routes().Listen[port]
		if w == nil {
			http.Error(rw, fmt.Sprintf("sleeper: no container for port %d", port), http.StatusNotFound)
			return
		}
		h.Serve(w, rw, r)
	})
}

// Serve handles a request for one container.
func (h *Handler) Serve(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ReservedPrefix) {
		h.serveReserved(w, rw, r) // loading.go: events, status, assets
		return
	}
	if h.ignored(w.Spec(), r) {
		h.serveIgnored(w, rw, r) // ignore.go: monitors neither wake nor keep awake
		return
	}
	if w.Acquire() {
		defer w.Release() // deferred: ReverseProxy aborts with a panic on a broken copy
		h.rec.Request(w.Name(), "proxied")
		h.forward(w, rw, r)
		return
	}
	// Not ready: wake_paths and the loading page decide before holding.
	if h.answerAsleep(w, rw, r) {
		return
	}
	h.hold(w, rw, r)
}

// hold waits for the container's wake and then forwards the request.
func (h *Handler) hold(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	name := w.Name()
	if w.Acquire() {
		// Woke up between Serve's check and here: not held after all.
		defer w.Release()
		h.rec.Request(name, "proxied")
		h.forward(w, rw, r)
		return
	}
	n := w.AddHeld(1)
	defer w.AddHeld(-1)
	if h.maxHeld > 0 && n > h.maxHeld {
		writeAnswer(rw, name, w.Answer(watcher.ErrTooManyHeld))
		h.rec.Request(name, "rejected")
		return
	}
	h.rec.Request(name, "held")
	ctx, unwatch := h.watchClient(r.Context(), r) // clientgone.go
	defer unwatch()
	dur, err := w.AcquireWait(ctx)
	if err != nil {
		if !h.dropGone(w, r, err) {
			h.wakeFailed(w, rw, r, err)
		}
		return
	}
	defer w.Release()
	unwatch()
	if h.dropGone(w, r, nil) {
		return
	}
	if dur > 0 {
		rw.Header().Set("X-Sleeper-Wake", strconv.FormatInt(dur.Milliseconds(), 10))
	}
	h.forward(w, rw, r)
}

func (h *Handler) wakeFailed(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request, err error) {
	name := w.Name()
	if r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	h.rec.Request(name, "error")
	// The watcher logged the wake's own failure in full; the client gets
	// the short reason only.
	writeAnswer(rw, name, w.Answer(err))
}

// writeAnswer refuses a request the way watcher.Answer says: status,
// Retry-After and a one-line public reason, never an error's own text
// (it can name internal addresses, dependencies, Proxmox nodes).
func writeAnswer(rw http.ResponseWriter, name string, a watcher.Answer) {
	a.SetHeader(rw.Header())
	http.Error(rw, fmt.Sprintf("sleeper: %s: %s", name, a.Reason), a.Status)
}

// upstreamFailed answers a request the app did not answer; err, which names
// the upstream's address, goes to the log only.
func upstreamFailed(rw http.ResponseWriter, log *slog.Logger, name string, err error) {
	log.Warn("upstream error", "error", err)
	writeAnswer(rw, name, watcher.AnswerFor(fmt.Errorf("%w: %w", watcher.ErrUnreachable, err), 0, 0))
}

// forward proxies to the container's current upstream.
func (h *Handler) forward(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	up := w.Upstream()
	if up == nil {
		upstreamFailed(rw, h.log.With("container", w.Name()), w.Name(), errors.New("no upstream address"))
		return
	}
	if leanEligible(r, up) {
		h.serveLean(rw, r, w.Name(), up) // fastpath.go: the common request
		return
	}
	p, ok := h.proxies.Load(w)
	if !ok || p.target != up {
		p = h.newProxy(w.Name(), up)
		h.proxies.Store(w, p)
	}
	p.rp.ServeHTTP(rw, r)
}

func (h *Handler) newProxy(name string, target *url.URL) *upstreamProxy {
	log := h.log.With("container", name)
	return &upstreamProxy{target: target, rp: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			h.trusted.setXForwarded(pr)
			pr.Out.Host = pr.In.Host // the app sees the Host it was asked for
		},
		Transport:  h.upstream,
		BufferPool: &h.buffers,
		ErrorHandler: func(rw http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return
			}
			upstreamFailed(rw, log.With("upstream", target.String()), name, err)
		},
	}}
}

// prune drops cached proxies of watchers that are gone.
func (h *Handler) prune(rt *watcher.Routes) {
	h.proxies.Range(func(w *watcher.Watcher, _ *upstreamProxy) bool {
		if rt.ByName[w.Name()] != w {
			h.proxies.Delete(w)
		}
		return true
	})
}

// bufferPool implements httputil.BufferPool over a sync.Pool of 32 KiB buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
