package labels

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

// ParseAgents reads a comma list of User-Agent substrings, the value of
// --ignore-agents and of the ignore_agents label: trimmed, lower-cased
// (matching is case-insensitive), empty items skipped so that an empty
// value means none. A substring with a control character could never
// match a header and is an error.
func ParseAgents(v string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		switch {
		case item == "":
			continue
		case strings.ContainsFunc(item, unicode.IsControl):
			return nil, fmt.Errorf("%q: a user agent substring must not contain control characters", item)
		case slices.Contains(out, item):
			continue // the same monitor named twice does no harm
		}
		out = append(out, item)
	}
	return out, nil
}

func (p *parser) ignoreAgents(v string) {
	// Empty items are reported like in every other list label: in a
	// label they usually mean a value went missing in templating.
	items := p.split(KeyIgnoreAgents, v)
	agents, err := ParseAgents(strings.Join(items, ","))
	if err != nil {
		p.fail(KeyIgnoreAgents, "%v", err)
		return
	}
	p.spec.IgnoreAgents = agents
}

func (p *parser) ignoreCIDRs(v string) {
	for _, item := range p.split(KeyIgnoreCIDRs, v) {
		prefix, err := parseCIDR(item)
		switch {
		case err != nil:
			p.failItem(KeyIgnoreCIDRs, item, "not a CIDR (10.0.0.0/8) or an IP address")
		case slices.Contains(p.spec.IgnoreCIDRs, prefix):
			p.fail(KeyIgnoreCIDRs, "%q is listed twice", item)
		default:
			p.spec.IgnoreCIDRs = append(p.spec.IgnoreCIDRs, prefix)
		}
	}
}

// parseCIDR accepts a CIDR or a bare address (a one-address network).
// Host bits are masked off, and IPv4-mapped IPv6 is unmapped, so that
// the prefix compares with what a client address unmaps to.
func parseCIDR(s string) (netip.Prefix, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		ip = ip.Unmap()
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse cidr %q: %w", s, err)
	}
	if prefix.Addr().Is4In6() && prefix.Bits() >= 96 {
		prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()-96)
	}
	return prefix.Masked(), nil
}

func (p *parser) ignorePaths(v string) {
	p.spec.IgnorePaths = p.pathPrefixes(KeyIgnorePaths, v)
}

// pathPrefixes reads a comma list of request path prefixes (wake_paths,
// ignore_paths).
func (p *parser) pathPrefixes(key, v string) []string {
	var out []string
	for _, item := range p.split(key, v) {
		switch {
		case !strings.HasPrefix(item, "/"):
			p.failItem(key, item, "must start with /")
		case hasSpaceOrControl(item) || strings.ContainsAny(item, "?#"):
			// Prefixes are matched against the request path alone; a
			// query or fragment here could never match.
			p.failItem(key, item, "a path prefix must not contain whitespace, ? or #")
		case slices.Contains(out, item):
			p.fail(key, "%q is listed twice", item)
		default:
			out = append(out, item)
		}
	}
	return out
}
