package proxy

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// defaultIgnoreAgents are the User-Agent substrings of common uptime
// monitors, lower-case: Uptime Kuma, UptimeRobot, Pingdom, StatusCake,
// Better Stack (formerly Better Uptime), Gatus, HetrixTools and the
// Prometheus blackbox exporter. It is an array so that nobody changes it.
var defaultIgnoreAgents = [...]string{
	"uptime-kuma",
	"uptimerobot",
	"pingdom",
	"statuscake",
	"better uptime bot",
	"betterstack",
	"better stack",
	"gatus",
	"hetrixtools",
	"blackbox exporter",
}

// DefaultIgnoreAgents returns the default of --ignore-agents, as a comma
// list for the flag's usage text.
func DefaultIgnoreAgents() string { return strings.Join(defaultIgnoreAgents[:], ",") }

// ignored reports whether a request is one that neither wakes the container
// nor counts as activity: its path, client network or User-Agent is in the
// container's ignore_* labels, or its User-Agent in --ignore-agents. It is on
// the hot path: no allocation unless a trusted proxy forwards the client.
func (h *Handler) ignored(spec *labels.Spec, r *http.Request) bool {
	for _, p := range spec.IgnorePaths {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	if len(spec.IgnoreCIDRs) > 0 {
		if ip, ok := h.clientAddr(r); ok {
			for _, p := range spec.IgnoreCIDRs {
				if p.Contains(ip) {
					return true
				}
			}
		}
	}
	ua := r.Header.Get("User-Agent")
	if ua == "" {
		return false
	}
	return matchAgent(ua, h.ignoreAgents) || matchAgent(ua, spec.IgnoreAgents)
}

// clientAddr is the client's address: the peer's, or, when the peer is a
// trusted proxy, the last address in X-Forwarded-For that is not one of
// the trusted proxies (the earlier ones are the client's own claims).
func (h *Handler) clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap()
	if !h.trusted.trusts(r.RemoteAddr) {
		return ip, true
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip, true // a garbled chain: trust what we saw ourselves
		}
		hop = hop.Unmap()
		if !h.trusted.contains(hop) {
			return hop, true
		}
		ip = hop
	}
	return ip, true
}

// matchAgent reports whether ua contains one of the lower-case substrings,
// ignoring ASCII case, without lower-casing ua (that would allocate).
func matchAgent(ua string, subs []string) bool {
	for _, s := range subs {
		if containsFold(ua, s) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case sub, ignoring
// ASCII case.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerASCII(s[i+j]) == sub[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return n == 0
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// serveIgnored answers an ignored request. To a ready container it is
// proxied, but its end is not activity (ReleaseQuiet), so a monitor polling
// every few seconds does not keep the app awake; while it runs it still
// keeps the container from being stopped under it. To a container that is
// not ready it is answered at once, without waking anything: 503 with
// Retry-After and the JSON of /.sleeper/status, so that a monitor sees
// "asleep", not "down", and can tell the two apart.
func (h *Handler) serveIgnored(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	if w.Acquire() {
		defer w.ReleaseQuiet() // deferred: ReverseProxy aborts with a panic on a broken copy
		h.rec.Request(w.Name(), "proxied")
		h.forward(w, rw, r)
		return
	}
	a := w.Answer(watcher.ErrWakeRefused)
	rw.Header().Set("Retry-After", strconv.Itoa(max(1, a.RetryAfter)))
	writeStatus(w, rw, http.StatusServiceUnavailable)
	h.rec.Request(w.Name(), "rejected")
}

// contains reports whether ip is one of the trusted proxies.
func (t trustedProxies) contains(ip netip.Addr) bool {
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
