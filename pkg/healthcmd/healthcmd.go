// Package healthcmd reads a container's health-check test and tells whether
// all it does is fetch one URL, so that sleeper can run the same check itself
// at its own cadence instead of waiting for the engine's interval.
//
// Policy: the package is pure (no I/O) and conservative. A test is
// understood only when every word of it is: a known tool (curl, wget) with
// flags whose meaning is known, or any other program whose only URL-shaped
// argument is the URL; in a CMD-SHELL test, one simple command optionally
// followed by "|| exit 1" and redirections. Anything else (pipes, "&&",
// command substitution, a POST, a proxy, an unknown flag) is not a URL test,
// because answering "ready" on a guess could call an app ready before its own
// test passes.
package healthcmd

import (
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Rule is what a tool counts as a passing answer.
type Rule int

// Success rules, per tool.
const (
	// AnyAnswer is curl without --fail: any HTTP answer exits 0.
	AnyAnswer Rule = iota + 1
	// Below400 is curl --fail: a status of 400 or more exits non-zero.
	Below400
	// Success2xx3xx is wget's rule and the one assumed for other programs.
	Success2xx3xx
)

// String names the rule for logs and the API.
func (r Rule) String() string {
	switch r {
	case AnyAnswer:
		return "any answer"
	case Below400:
		return "status < 400"
	case Success2xx3xx:
		return "2xx/3xx"
	default:
		return "unknown"
	}
}

// Check is a health test that fetches one URL.
type Check struct {
	Tool   string      // "curl", "wget" or the program's base name
	Method string      // GET, or HEAD for curl -I and wget --spider
	URL    *url.URL    // as the test names it, after $VAR expansion
	Header http.Header // extra request headers (curl -H, wget --header); Host is in Host
	Host   string      // the Host header the tool sends: a Host header's value, else URL.Host
	Rule   Rule
	// Follow is set when the tool follows redirects (curl -L, wget by
	// default): the answer that counts is the last one.
	Follow bool
}

// OK reports whether a final answer with this status passes the check.
func (c Check) OK(status int) bool {
	switch c.Rule {
	case AnyAnswer:
		return status >= 100
	case Below400:
		return status >= 100 && status < 400
	default:
		return status >= 200 && status < 400
	}
}

// Parse returns the URL check that test performs, and false when test is
// anything else. test is the engine's form: ["CMD", prog, args...] or
// ["CMD-SHELL", "command line"]; env is the container's environment
// (KEY=value), used to expand $VAR and ${VAR} in a CMD-SHELL test only, as
// the shell would (an exec-form test sees no expansion).
func Parse(test []string, env []string) (Check, bool) {
	if len(test) < 2 {
		return Check{}, false
	}
	var words []string
	switch test[0] {
	case "CMD":
		words = test[1:]
	case "CMD-SHELL":
		if len(test) != 2 {
			return Check{}, false
		}
		var ok bool
		words, ok = shellCommand(test[1], envMap(env))
		if !ok {
			return Check{}, false
		}
	default:
		return Check{}, false
	}
	return parseCommand(words)
}

// parseCommand dispatches on the program's base name.
func parseCommand(words []string) (Check, bool) {
	if len(words) == 0 {
		return Check{}, false
	}
	prog := path.Base(words[0])
	args := words[1:]
	if prog == "busybox" && len(args) > 0 {
		prog, args = path.Base(args[0]), args[1:]
	}
	var c Check
	var ok bool
	switch prog {
	case "curl":
		c, ok = parseCurl(args)
	case "wget":
		c, ok = parseWget(args)
	default:
		c, ok = parseOther(prog, args)
	}
	if !ok {
		return Check{}, false
	}
	c.Tool = prog
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.Host == "" {
		c.Host = c.URL.Host
	}
	return c, true
}

// parseOther accepts a program whose one URL-shaped argument is the URL,
// such as ["/app", "-healthcheck", "http://localhost:8080/health"].
func parseOther(prog string, args []string) (Check, bool) {
	var c Check
	for _, a := range args {
		if !hasHTTPScheme(a) {
			continue
		}
		if c.URL != nil {
			return Check{}, false // two URLs: which one decides?
		}
		u, ok := parseURL(a, false)
		if !ok {
			return Check{}, false
		}
		c.URL = u
	}
	if c.URL == nil || prog == "" {
		return Check{}, false
	}
	c.Rule = Success2xx3xx
	return c, true
}

// hasHTTPScheme reports whether s starts with http:// or https://.
func hasHTTPScheme(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// parseURL accepts an http(s) URL with a host. bare allows a URL without a
// scheme, which curl and wget read as http.
func parseURL(s string, bare bool) (*url.URL, bool) {
	if bare && !strings.Contains(s, "://") {
		s = "http://" + s
	}
	if !hasHTTPScheme(s) {
		return nil, false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || !validHost(u) {
		return nil, false
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Fragment, u.RawFragment = "", ""
	return u, true
}

// validHost accepts a DNS name or an IP literal and an optional numeric port:
// "$URL" read as a bare host is a variable curl never saw expanded.
func validHost(u *url.URL) bool {
	h := u.Hostname()
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err != nil {
		for i := 0; i < len(h); i++ {
			c := h[i]
			if !isNameChar(c) && c != '-' && c != '.' {
				return false
			}
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return err == nil && n > 0 && n < 65536
	}
	return !strings.HasSuffix(u.Host, ":")
}

// addHeader records a "Name: value" header; Host becomes the Host field.
func (c *Check) addHeader(h string) bool {
	name, value, ok := strings.Cut(h, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
		return false
	}
	if strings.EqualFold(name, "Host") {
		c.Host = value
		return value != ""
	}
	if c.Header == nil {
		c.Header = http.Header{}
	}
	c.Header.Add(name, value)
	return true
}

// setURL takes the one positional argument of curl or wget.
func (c *Check) setURL(a string) bool {
	if c.URL != nil {
		return false
	}
	u, ok := parseURL(a, true)
	c.URL = u
	return ok
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}
