package proxy

import (
	"net"
	"strings"
)

// normalizeHost turns a Host header into a routing key: lower-case, without
// port, brackets or trailing dot. The common cases (a lower-case name, with
// or without a port) return a substring of the input without allocating.
func normalizeHost(h string) string {
	colon := -1
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'A' <= c && c <= 'Z', c == '[':
			return normalizeHostSlow(h)
		case c == ':':
			if colon >= 0 {
				return normalizeHostSlow(h) // an IPv6 literal
			}
			colon = i
		}
	}
	if colon >= 0 {
		h = h[:colon]
	}
	return strings.TrimSuffix(h, ".")
}

func normalizeHostSlow(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
