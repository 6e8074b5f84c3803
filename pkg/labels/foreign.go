package labels

import (
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Sources of a host name, as Options.HostsFrom names them and
// HostSource.Source reports them.
const (
	// SourceLabel is sleeper's own hosts label; it always wins.
	SourceLabel = "label"
	// SourceDomain is the "<name>.<--domain>" default.
	SourceDomain = "domain"
	// SourceTraefik is a Traefik router rule's Host matchers.
	SourceTraefik = "traefik"
	// SourceCaddy is a caddy-docker-proxy site address.
	SourceCaddy = "caddy"
)

// Foreign label keys: other tools' labels sleeper reads (never writes) to
// find host names when a container has no hosts label. They are not under
// sleeper's prefix, so an unknown one is simply not ours.
const (
	// TraefikRouterPrefix and TraefikRuleSuffix frame a Traefik HTTP
	// router rule: traefik.http.routers.<router>.rule. Every Host (v3) or
	// Host with several names (v2 syntax) matcher not under a negation
	// counts, whatever it is combined with (&&, ||, parentheses);
	// HostRegexp cannot be turned into names and is skipped with a note.
	// Example: traefik.http.routers.web.rule=Host(`app.example.com`) && PathPrefix(`/api`)
	TraefikRouterPrefix = "traefik.http.routers."
	TraefikRuleSuffix   = ".rule"

	// CaddyLabel is caddy-docker-proxy's site label, alone or with an
	// index suffix (caddy_0, caddy_1, …, one site block each). Its value is
	// one or more site addresses separated by spaces or commas; the scheme,
	// port and path are stripped, "*.example.com" is kept as a wildcard.
	// Example: caddy=https://app.example.com, www.example.com:443
	CaddyLabel = "caddy"
)

// HostSource is one host name of a Spec and where it was found.
type HostSource struct {
	Host   string `json:"host"`
	Source string `json:"source"` // SourceLabel, SourceDomain, SourceTraefik or SourceCaddy
	Label  string `json:"label"`  // the full label key; "" for SourceDomain
}

// ParseHostsFrom reads the value of --hosts-from: a comma list of
// SourceTraefik and SourceCaddy, in any order; empty or "none" means none
// ("none" because an empty environment variable counts as unset).
func ParseHostsFrom(v string) ([]string, error) {
	if strings.EqualFold(strings.TrimSpace(v), "none") {
		return nil, nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		switch item {
		case "":
			continue
		case SourceTraefik, SourceCaddy:
			if !slices.Contains(out, item) {
				out = append(out, item)
			}
		default:
			return nil, fmt.Errorf("%q: unknown host source, want %s or %s", item, SourceTraefik, SourceCaddy)
		}
	}
	return out, nil
}

// ForeignHosts finds host names in the Traefik and caddy-docker-proxy labels
// of a container, for the sources named in from (SourceTraefik,
// SourceCaddy). It never fails: these labels were written for another tool,
// so what sleeper cannot use (a HostRegexp, a rule without a host, an IP
// address) is skipped and explained in notes, for a debug log. Hosts come
// out lower-cased, each once, Traefik's before Caddy's, each source's labels
// in key order.
func ForeignHosts(labels map[string]string, from []string) (hosts []HostSource, notes []string) {
	seen := map[string]bool{}
	add := func(source, key string, found []string, skipped []string) {
		for _, h := range found {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, HostSource{Host: h, Source: source, Label: key})
			}
		}
		for _, n := range skipped {
			notes = append(notes, fmt.Sprintf("label %s=%q: %s", key, labels[key], n))
		}
	}
	if slices.Contains(from, SourceTraefik) {
		for _, key := range traefikRuleKeys(labels) {
			found, skipped := TraefikRuleHosts(labels[key])
			add(SourceTraefik, key, found, skipped)
		}
	}
	if slices.Contains(from, SourceCaddy) {
		for _, key := range caddyKeys(labels) {
			found, skipped := CaddyAddressHosts(labels[key])
			add(SourceCaddy, key, found, skipped)
		}
	}
	return hosts, notes
}

// traefikRuleKeys returns the router rule keys, sorted.
func traefikRuleKeys(labels map[string]string) []string {
	var keys []string
	for k := range maps.Keys(labels) {
		name, ok := strings.CutPrefix(k, TraefikRouterPrefix)
		if !ok {
			continue
		}
		// The router name itself contains no dot: "a.b.rule" would be
		// router "a"'s option "b.rule", which Traefik does not have.
		if name, ok = strings.CutSuffix(name, TraefikRuleSuffix); ok && name != "" && !strings.Contains(name, ".") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// caddyKeys returns "caddy" and "caddy_<n>" keys in the order
// caddy-docker-proxy reads them: the bare key first, then by index.
// "caddy.<directive>" keys are directives, not site addresses.
func caddyKeys(labels map[string]string) []string {
	type indexed struct {
		key string
		n   int
	}
	var keys []indexed
	for k := range maps.Keys(labels) {
		if k == CaddyLabel {
			keys = append(keys, indexed{k, -1})
			continue
		}
		digits, ok := strings.CutPrefix(k, CaddyLabel+"_")
		if !ok || digits == "" || len(digits) > 9 || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		n, _ := strconv.Atoi(digits)
		keys = append(keys, indexed{k, n})
	}
	slices.SortFunc(keys, func(a, b indexed) int {
		if a.n != b.n {
			return a.n - b.n
		}
		return strings.Compare(a.key, b.key) // caddy_1 and caddy_01
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out
}

// TraefikRuleHosts returns the host names of a Traefik router rule. Traefik
// parses rules as Go expressions (matcher calls with string arguments
// combined by &&, || and !), so go/parser reads exactly its grammar. A Host
// under a negation is not a host the router serves and is skipped.
func TraefikRuleHosts(rule string) (hosts, notes []string) {
	if len(rule) > 64<<10 {
		return nil, []string{"rule longer than 64 KiB"}
	}
	expr, err := goparser.ParseExpr(rule)
	if err != nil {
		return nil, []string{"not a Traefik rule: " + firstLine(err.Error())}
	}
	w := ruleWalker{}
	w.walk(expr, false)
	if len(w.hosts) == 0 && len(w.notes) == 0 {
		w.notes = append(w.notes, "the rule has no Host matcher")
	}
	return w.hosts, w.notes
}

// ruleWalker collects the Host matchers of one rule.
type ruleWalker struct {
	hosts, notes []string
}

func (w *ruleWalker) walk(e ast.Expr, negated bool) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		w.walk(e.X, negated)
	case *ast.UnaryExpr:
		if e.Op != token.NOT {
			w.notes = append(w.notes, "unexpected operator "+e.Op.String())
			return
		}
		w.walk(e.X, !negated)
	case *ast.BinaryExpr:
		if e.Op != token.LAND && e.Op != token.LOR {
			w.notes = append(w.notes, "unexpected operator "+e.Op.String())
			return
		}
		w.walk(e.X, negated)
		w.walk(e.Y, negated)
	case *ast.CallExpr:
		w.matcher(e, negated)
	default:
		w.notes = append(w.notes, "not a matcher call")
	}
}

// matcher handles one matcher call. Traefik v2 accepted the names in any
// case of their first letter (host, Host); HostHeader is v2's alias of Host.
func (w *ruleWalker) matcher(call *ast.CallExpr, negated bool) {
	id, ok := call.Fun.(*ast.Ident)
	if !ok {
		w.notes = append(w.notes, "not a matcher call")
		return
	}
	switch strings.ToLower(id.Name) {
	case "host", "hostheader":
	case "hostregexp":
		w.notes = append(w.notes, "HostRegexp skipped: a pattern is not a host name (list the hosts in the hosts label)")
		return
	default:
		return // PathPrefix, Method, Header…: not about the host
	}
	if negated {
		w.notes = append(w.notes, "a negated Host is skipped")
		return
	}
	for _, arg := range call.Args {
		lit, ok := arg.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			w.notes = append(w.notes, "a Host argument is not a string")
			continue
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			w.notes = append(w.notes, "a Host argument is not a valid string")
			continue
		}
		w.add(s)
	}
}

func (w *ruleWalker) add(h string) {
	n, reason := normaliseHost(strings.TrimSpace(h))
	if reason != "" {
		w.notes = append(w.notes, fmt.Sprintf("host %q skipped: %s", h, reason))
		return
	}
	if !slices.Contains(w.hosts, n) {
		w.hosts = append(w.hosts, n)
	}
}

// CaddyAddressHosts returns the host names of a caddy-docker-proxy site
// label: addresses separated by spaces or commas, each
// [scheme://]host[:port][/path]. A snippet "(name)", a port-only address
// (":80"), a placeholder or an IP address names no host and is skipped.
func CaddyAddressHosts(v string) (hosts, notes []string) {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) == 0 {
		return nil, []string{"no site address (global options)"}
	}
	for _, addr := range fields {
		h, reason := caddyHost(addr)
		if reason != "" {
			notes = append(notes, fmt.Sprintf("address %q skipped: %s", addr, reason))
			continue
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts, notes
}

// caddyHost strips one site address down to its host name.
func caddyHost(addr string) (string, string) {
	if strings.HasPrefix(addr, "(") {
		return "", "a snippet, not a site"
	}
	if strings.ContainsAny(addr, "{}") {
		return "", "placeholders are not expanded"
	}
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		addr = rest
	}
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	if strings.HasPrefix(addr, "[") {
		return "", "IP literals are not allowed: sleeper routes by host name"
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[:i]
	}
	if addr == "" {
		return "", "no host, only a port"
	}
	return normaliseHost(addr)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
