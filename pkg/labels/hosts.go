package labels

import (
	"net/netip"
	"strings"
)

// normaliseHost lower-cases h, drops one trailing dot and checks that the
// result is a DNS name or "*." followed by one. It returns the reason when h
// is not acceptable. The checks run on the bytes as given, before
// lower-casing, because strings.ToLower maps some non-ASCII runes (the
// Kelvin sign) to ASCII letters and would let them through.
func normaliseHost(h string) (string, string) {
	switch {
	case strings.Contains(h, "://"):
		return "", "a host name, not a URL: drop the scheme"
	case strings.HasPrefix(h, "["), isIP(h):
		return "", "IP literals are not allowed: sleeper routes by host name"
	case strings.Contains(h, "/"):
		return "", "a host name must not contain a path"
	case strings.Contains(h, ":"):
		return "", "a host name must not contain a port: the Host header's port is ignored"
	}
	h = strings.TrimSuffix(h, ".")
	name, _ := strings.CutPrefix(h, "*.")
	if strings.Contains(name, "*") || name == "" && strings.HasPrefix(h, "*") {
		return "", "a wildcard is only allowed as *. followed by a host name, e.g. *.example.com"
	}
	if reason := checkDNSName(name); reason != "" {
		return "", reason
	}
	if len(h) > 253 {
		return "", "longer than 253 characters"
	}
	return strings.ToLower(h), ""
}

// isIP reports whether h is an IP address, with or without a trailing dot.
// IPv4 literals are made of valid DNS labels, so they must be caught first.
func isIP(h string) bool {
	_, err := netip.ParseAddr(strings.TrimSuffix(h, "."))
	return err == nil
}

// checkDNSName checks RFC 1123 host name syntax: dot-separated labels of
// ASCII letters, digits and '-', 1-63 characters, no '-' at either end.
func checkDNSName(name string) string {
	if name == "" {
		return "empty host name"
	}
	if len(name) > 253 {
		return "longer than 253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return "empty label between dots"
		case len(label) > 63:
			return "a label is longer than 63 characters"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "a label must not start or end with -"
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return "only letters, digits, - and . are allowed (IDNs in punycode, xn--…)"
			}
		}
	}
	return ""
}
