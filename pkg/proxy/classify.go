package proxy

import (
	"net/http"
	"path"
	"strconv"
	"strings"

	"sleeper/pkg/labels"
)

// isBrowserNavigation reports whether r is a browser loading a page, the
// one kind of request that may get the loading page instead of being held:
// GET or HEAD, an Accept header that lists text/html, and no Upgrade.
//
// Sec-Fetch-Mode, when a browser sends it, must be "navigate": a fetch() or
// XHR from a page that asks for HTML is a script expecting the app's answer,
// so it is held, never handed the loading page.
func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if isUpgrade(r.Header) {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && !strings.EqualFold(mode, "navigate") {
		return false
	}
	return acceptsHTML(r.Header.Values("Accept"))
}

// isUpgrade reports an Upgrade request (WebSocket, h2c): an Upgrade header
// or "upgrade" among the Connection tokens.
func isUpgrade(h http.Header) bool {
	if h.Get("Upgrade") != "" {
		return true
	}
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// acceptsHTML reports whether an Accept header names text/html itself with
// a non-zero quality. Wildcards do not count: "*/*" is what API clients and
// curl send, and they must be held, not given a page.
func acceptsHTML(values []string) bool {
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			mediaRange, params, _ := strings.Cut(elem, ";")
			if !strings.EqualFold(strings.TrimSpace(mediaRange), "text/html") {
				continue
			}
			if qualityZero(params) {
				continue
			}
			return true
		}
	}
	return false
}

// qualityZero reports whether media-range parameters carry q=0, which
// means "not acceptable" (RFC 9110 §12.4.2).
func qualityZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil && q <= 0
	}
	return false
}

// mayWake reports whether a request for p may wake the container: every
// path when wake_paths is empty, else only paths under one of its prefixes.
// A prefix matches on whole path segments ("/api" takes "/api" and
// "/api/x", not "/apix"); a prefix ending in "/" matches as a plain string
// prefix. The path is cleaned first so that "/api/../admin" cannot borrow
// /api's right to wake.
func mayWake(spec *labels.Spec, p string) bool {
	if len(spec.WakePaths) == 0 {
		return true
	}
	p = cleanPath(p)
	for _, prefix := range spec.WakePaths {
		if pathUnder(p, prefix) {
			return true
		}
	}
	return false
}

func pathUnder(p, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix || (strings.HasPrefix(p, prefix) && p[len(prefix)] == '/')
}

// cleanPath resolves dot segments and doubled slashes but keeps a trailing
// slash, which is significant for prefixes like "/api/".
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
