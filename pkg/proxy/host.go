package proxy

import (
	"net"
	"strings"
)

// normalizeHost turns a Host header into a routing key: lower-case, without
// port, brackets or trailing dot. The common case (already clean) returns the
// input without allocating.
func normalizeHost(h string) string {
	clean := true
	for i := 0; i < len(h); i++ {
		if c := h[i]; c == ':' || c == '[' || ('A' <= c && c <= 'Z') {
			clean = false
			break
		}
	}
	if clean && !strings.HasSuffix(h, ".") {
		return h
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
