package healthcmd

import (
	"net/http"
	"strings"
)

// flagKind is what an option does to the check.
type flagKind int

const (
	ignore   flagKind = iota // no effect on what counts (output, verbosity, timeouts)
	fail                     // curl --fail
	follow                   // follow redirects
	noFollow                 // wget --max-redirect
	head                     // HEAD instead of GET
	header                   // one request header
	method                   // curl -X: only GET and HEAD are understood
	agent                    // User-Agent
)

// option is one known flag of a tool.
type option struct {
	kind   flagKind
	hasArg bool
}

// curlShort and curlLong are the curl options that can appear in a health
// test without changing what is fetched or sending it elsewhere. Anything
// else (-d, -x, --resolve, --unix-socket, …) makes the test not understood.
var curlShort = map[byte]option{
	'f': {fail, false}, 's': {ignore, false}, 'S': {ignore, false}, 'L': {follow, false},
	'k': {ignore, false}, 'I': {head, false}, 'v': {ignore, false}, 'q': {ignore, false},
	'4': {ignore, false}, '6': {ignore, false}, 'g': {ignore, false}, 'N': {ignore, false},
	'i': {ignore, false}, '#': {ignore, false},
	'o': {ignore, true}, 'm': {ignore, true}, 'w': {ignore, true}, 'H': {header, true},
	'A': {agent, true}, 'X': {method, true}, 'e': {ignore, true},
}

var curlLong = map[string]option{
	"fail": {fail, false}, "fail-with-body": {fail, false}, "fail-early": {ignore, false},
	"silent": {ignore, false}, "show-error": {ignore, false}, "location": {follow, false},
	"insecure": {ignore, false}, "head": {head, false}, "verbose": {ignore, false},
	"globoff": {ignore, false}, "no-buffer": {ignore, false}, "include": {ignore, false},
	"compressed": {ignore, false}, "no-progress-meter": {ignore, false}, "http1.1": {ignore, false},
	"ipv4": {ignore, false}, "ipv6": {ignore, false}, "progress-bar": {ignore, false},
	"retry-connrefused": {ignore, false}, "retry-all-errors": {ignore, false},
	"output": {ignore, true}, "max-time": {ignore, true}, "connect-timeout": {ignore, true},
	"retry": {ignore, true}, "retry-delay": {ignore, true}, "retry-max-time": {ignore, true},
	"write-out": {ignore, true}, "header": {header, true}, "user-agent": {agent, true},
	"request": {method, true}, "referer": {ignore, true}, "max-redirs": {ignore, true},
	"cacert": {ignore, true}, "capath": {ignore, true},
}

// wgetShort and wgetLong likewise, for GNU and BusyBox wget.
var wgetShort = map[byte]option{
	'q': {ignore, false}, 'S': {ignore, false}, '4': {ignore, false}, '6': {ignore, false},
	's': {head, false}, // BusyBox: --spider
	'O': {ignore, true}, 'T': {ignore, true}, 't': {ignore, true}, 'U': {agent, true},
	'o': {ignore, true}, 'Y': {ignore, true},
}

var wgetLong = map[string]option{
	"quiet": {ignore, false}, "spider": {head, false}, "no-verbose": {ignore, false},
	"server-response": {ignore, false}, "no-check-certificate": {ignore, false},
	"no-cache": {ignore, false}, "no-proxy": {ignore, false}, "inet4-only": {ignore, false},
	"inet6-only":      {ignore, false},
	"output-document": {ignore, true}, "timeout": {ignore, true}, "tries": {ignore, true},
	"user-agent": {agent, true}, "header": {header, true}, "output-file": {ignore, true},
	"max-redirect": {noFollow, true}, "proxy": {ignore, true},
}

// tool describes one program's command line.
type tool struct {
	short map[byte]option
	long  map[string]option
	// longEquals allows "--name=value" (wget does, curl does not).
	longEquals bool
}

var (
	curlTool = tool{short: curlShort, long: curlLong}
	wgetTool = tool{short: wgetShort, long: wgetLong, longEquals: true}
)

func parseCurl(args []string) (Check, bool) {
	c := Check{Rule: AnyAnswer}
	if !curlTool.parse(&c, args) {
		return Check{}, false
	}
	return c, true
}

// parseWget: wget follows redirects and fails on 4xx/5xx.
func parseWget(args []string) (Check, bool) {
	c := Check{Rule: Success2xx3xx, Follow: true}
	if !wgetTool.parse(&c, args) {
		return Check{}, false
	}
	return c, true
}

// parse walks args, applying each known option and taking the one URL.
func (t tool) parse(c *Check, args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		var opt option
		var val string
		var ok bool
		switch {
		case a == "-":
			return false // stdin or stdout: not a URL
		case !strings.HasPrefix(a, "-"):
			if !c.setURL(a) {
				return false
			}
			continue
		case strings.HasPrefix(a, "--"):
			name, v, hasEq := strings.Cut(a[2:], "=")
			if hasEq && !t.longEquals {
				return false
			}
			if opt, ok = t.long[name]; !ok {
				return false
			}
			switch {
			case hasEq && !opt.hasArg:
				return false
			case hasEq:
				val = v
			case opt.hasArg:
				if i+1 >= len(args) {
					return false
				}
				i++
				val = args[i]
			}
			if !apply(c, opt.kind, val) {
				return false
			}
			continue
		}
		// A cluster of short options: "-fsSL", "-qO-", "-m5", "-so /dev/null".
		for j := 1; j < len(a); j++ {
			if opt, ok = t.short[a[j]]; !ok {
				return false
			}
			val = ""
			if opt.hasArg {
				if rest := a[j+1:]; rest != "" {
					val = rest
				} else if i+1 < len(args) {
					i++
					val = args[i]
				} else {
					return false
				}
				j = len(a)
			}
			if !apply(c, opt.kind, val) {
				return false
			}
		}
	}
	return c.URL != nil
}

// apply records the effect of one option.
func apply(c *Check, k flagKind, val string) bool {
	switch k {
	case fail:
		c.Rule = Below400
	case follow:
		c.Follow = true
	case noFollow:
		c.Follow = val != "0"
	case head:
		c.Method = http.MethodHead
	case header:
		return c.addHeader(val)
	case agent:
		return c.addHeader("User-Agent: " + val)
	case method:
		switch m := strings.ToUpper(val); m {
		case http.MethodGet, http.MethodHead:
			c.Method = m
		default:
			return false // a POST or PUT checks something else
		}
	}
	return true
}
