package proxy

import (
	"fmt"
	"net/http/httputil"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses --trusted-proxies: CIDRs or single addresses,
// separated by commas. The error names the value that is not one.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8, fd00::/8) nor an IP address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// trustedProxies are the peers whose X-Forwarded-* headers are believed:
// front proxies (Traefik, Caddy) that terminate TLS and know the client.
type trustedProxies []netip.Prefix

// trusts reports whether the peer at remoteAddr (ip:port, as the server
// sets it) is one of them.
func (t trustedProxies) trusts(remoteAddr string) bool {
	if len(t) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range t {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// setXForwarded sets the X-Forwarded-* headers of the request to the app.
// From anyone, they are replaced: a client must not choose the address or
// scheme the app believes. From a trusted proxy, X-Forwarded-For is
// appended to (the chain ends with the proxy's own address) and
// X-Forwarded-Proto and X-Forwarded-Host are kept when it sent them, so
// the app sees https and the client's address behind a TLS front proxy.
func (t trustedProxies) setXForwarded(pr *httputil.ProxyRequest) {
	trusted := t.trusts(pr.In.RemoteAddr)
	if trusted {
		// ReverseProxy drops these before Rewrite; SetXForwarded appends
		// to an X-Forwarded-For it finds on the outbound request.
		if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			pr.Out.Header["X-Forwarded-For"] = append([]string(nil), prior...)
		}
	}
	pr.SetXForwarded()
	if !trusted {
		return
	}
	for _, k := range []string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
		if v := pr.In.Header.Values(k); len(v) > 0 {
			pr.Out.Header[k] = append([]string(nil), v...)
		}
	}
}
