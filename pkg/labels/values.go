package labels

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The setters below each parse one label's trimmed, non-empty value. They
// record problems with p.fail and leave the default in place, so that parsing
// goes on and every bad label is reported in one pass.

func (p *parser) enable(v string) {
	// Parse already returned for false; only a malformed value is left.
	if _, err := strconv.ParseBool(v); err != nil {
		p.fail(KeyEnable, "not a boolean (true or false)")
	}
}

func (p *parser) hosts(v string) {
	seen := make(map[string]bool)
	for _, item := range p.split(KeyHosts, v) {
		h, reason := normaliseHost(item)
		switch {
		case reason != "":
			p.failItem(KeyHosts, item, "%s", reason)
		case seen[h]:
			p.fail(KeyHosts, "%q is listed twice", item)
		default:
			seen[h] = true
			p.spec.Hosts = append(p.spec.Hosts, h)
			p.spec.HostSources = append(p.spec.HostSources, HostSource{Host: h, Source: SourceLabel, Label: p.full(KeyHosts)})
		}
	}
}

func (p *parser) port(v string) {
	// "0" is accepted as an explicit "pick it for me", the same as absent.
	if v == "0" {
		return
	}
	port, ok := parsePort(v)
	if !ok {
		p.fail(KeyPort, "not a port number (1-65535)")
		return
	}
	p.spec.Port = port
}

func (p *parser) scheme(v string) {
	switch s := strings.ToLower(v); s {
	case "http", "https":
		p.spec.Scheme = s
	default:
		p.fail(KeyScheme, "must be http or https")
	}
}

func (p *parser) listen(v string) {
	for _, item := range p.split(KeyListen, v) {
		port, ok := parsePort(item)
		switch {
		case !ok:
			p.failItem(KeyListen, item, "not a port number (1-65535)")
		case slices.Contains(p.spec.Listen, port):
			p.fail(KeyListen, "port %d is listed twice", port)
		default:
			p.spec.Listen = append(p.spec.Listen, port)
		}
	}
}

func (p *parser) streams(v string) {
	for _, item := range p.split(KeyStreams, v) {
		s, err := ParseStream(item)
		if err != nil {
			p.failItem(KeyStreams, item, "%v", err)
			continue
		}
		if i := slices.IndexFunc(p.spec.Streams, s.conflicts); i >= 0 {
			p.fail(KeyStreams, "%q and %q both listen on %s port %d",
				p.spec.Streams[i].String(), s.String(), s.Protocol, s.Listen)
			continue
		}
		p.spec.Streams = append(p.spec.Streams, s)
	}
}

func (p *parser) idleTimeout(v string) {
	if d, ok := p.duration(KeyIdleTimeout, v, "never sleep"); ok {
		p.spec.IdleTimeout = d
	}
}

func (p *parser) stopTimeout(v string) {
	if d, ok := p.duration(KeyStopTimeout, v, "SIGKILL at once"); ok {
		p.spec.StopTimeout = d
	}
}

func (p *parser) wakeTimeout(v string) {
	d, ok := p.duration(KeyWakeTimeout, v, "")
	switch {
	case !ok:
	case d == 0:
		p.fail(KeyWakeTimeout, "must be greater than 0: no wake is instant")
	default:
		p.spec.WakeTimeout = d
	}
}

// duration parses a Go duration ≥ 0; zero is what the label's doc says it
// means (zeroMeans), or rejected by the caller when zeroMeans is "".
func (p *parser) duration(key, v, zeroMeans string) (time.Duration, bool) {
	d, err := time.ParseDuration(v)
	if err != nil {
		reason := "not a Go duration (e.g. 90s, 15m, 1h30m)"
		if isDigits(v) {
			// A bare number is ambiguous (seconds? minutes?), so
			// say what to add rather than guess.
			reason += "; add a unit, e.g. " + v + "s"
		}
		p.fail(key, "%s", reason)
		return 0, false
	}
	if d < 0 {
		reason := "must not be negative"
		if zeroMeans != "" {
			reason += "; 0 means " + zeroMeans
		}
		p.fail(key, "%s", reason)
		return 0, false
	}
	return d, true
}

func (p *parser) stopMethod(v string) {
	switch m := StopMethod(strings.ToLower(v)); m {
	case StopMethodStop, StopMethodPause, StopMethodKill, StopMethodHibernate:
		p.spec.StopMethod = m
	default:
		p.fail(KeyStopMethod, "must be stop, pause, kill or hibernate")
	}
}

func (p *parser) streamWake(v string) {
	switch m := StreamWake(strings.ToLower(v)); m {
	case StreamWakeConnect, StreamWakeData:
		p.spec.StreamWake = m
	default:
		p.fail(KeyStreamWake, "must be connect or data")
	}
}

func (p *parser) stopSignal(v string) {
	sig, ok := canonicalSignal(v)
	if !ok {
		p.fail(KeyStopSignal, "not a signal: use a name like SIGTERM, TERM or SIGINT, or a number 1-64")
		return
	}
	p.spec.StopSignal = sig
}

// signalNames are the POSIX (and Linux) signal names sleeper accepts. Real-time
// signals are reachable by number, which is also how Docker spells them.
var signalNames = [...]string{
	"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1",
	"SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP",
	"TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH",
	"IO", "PWR", "SYS",
}

// canonicalSignal maps "term", "SIGTERM", "SigTerm" to "SIGTERM" and "09" to
// "9", so the runtime compares and sends one spelling.
func canonicalSignal(v string) (string, bool) {
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || n < 1 || n > 64 {
			return "", false
		}
		return strconv.FormatUint(n, 10), true
	}
	name := strings.ToUpper(v)
	name = strings.TrimPrefix(name, "SIG")
	if !slices.Contains(signalNames[:], name) {
		return "", false
	}
	return "SIG" + name, true
}

func (p *parser) dependsOn(v string) {
	self := strings.TrimPrefix(p.opt.Name, "/")
	for _, item := range p.split(KeyDependsOn, v) {
		engine, name, cond, hasCond := splitDependency(item)
		healthy := hasCond && strings.EqualFold(cond, "healthy")
		switch {
		case hasCond && !healthy:
			p.failItem(KeyDependsOn, item, "unknown condition %q; only :healthy is supported", cond)
		case engine != "" && !validContainerName(engine):
			p.failItem(KeyDependsOn, item, "not an engine name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
		case !validDependencyName(name):
			p.failItem(KeyDependsOn, item, "not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, or project/service)")
		case name == self && engine == "":
			p.failItem(KeyDependsOn, item, "the container depends on itself")
		case slices.ContainsFunc(p.spec.DependsOn, func(d Dependency) bool { return d.Name == name && d.Engine == engine }):
			p.fail(KeyDependsOn, "%q is listed twice", item)
		default:
			p.spec.DependsOn = append(p.spec.DependsOn, Dependency{Engine: engine, Name: name, Healthy: healthy})
		}
	}
}

// splitDependency splits "[engine:]name[:cond]". Two parts are a name and
// a condition when the second is "healthy" (the form of one engine, which
// came first), else an engine and a name.
func splitDependency(item string) (engine, name, cond string, hasCond bool) {
	parts := strings.SplitN(item, ":", 3)
	switch {
	case len(parts) == 3:
		return parts[0], parts[1], parts[2], true
	case len(parts) == 2 && strings.EqualFold(parts[1], "healthy"):
		return "", parts[0], parts[1], true
	case len(parts) == 2:
		return parts[0], parts[1], "", false
	}
	return "", item, "", false
}

// validDependencyName accepts "name" or "project/service", each part in
// Docker's container name charset.
func validDependencyName(name string) bool {
	project, service, found := strings.Cut(name, "/")
	if !found {
		return validContainerName(name)
	}
	return validContainerName(project) && validContainerName(service)
}

// validContainerName is Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func validContainerName(s string) bool {
	if s == "" || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func (p *parser) wakePaths(v string) {
	p.spec.WakePaths = p.pathPrefixes(KeyWakePaths, v)
}

func (p *parser) loadingPage(v string) {
	on, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(KeyLoadingPage, "not a boolean (true or false)")
		return
	}
	p.spec.LoadingPage = on
}

func (p *parser) healthExec(v string) {
	on, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(KeyHealthExec, "not a boolean (true or false)")
		return
	}
	p.spec.HealthExec = on
}

func (p *parser) readyPath(v string) {
	switch _, err := url.ParseRequestURI(v); {
	case !strings.HasPrefix(v, "/"):
		p.fail(KeyReadyPath, "must start with /")
	case hasSpaceOrControl(v) || strings.Contains(v, "#"):
		p.fail(KeyReadyPath, "must not contain whitespace or # (a fragment is never sent)")
	case err != nil:
		p.fail(KeyReadyPath, "not a valid request path")
	default:
		p.spec.ReadyPath = v
	}
}

func (p *parser) network(v string) {
	if hasSpaceOrControl(v) {
		p.fail(KeyNetwork, "a network name must not contain whitespace")
		return
	}
	p.spec.Network = v
}

func (p *parser) upstream(v string) {
	u, reason := parseUpstream(v)
	if reason != "" {
		p.fail(KeyUpstream, "%s", reason)
		return
	}
	p.spec.Upstream = u
}

// parseUpstream accepts only scheme://host[:port][/]. Requests keep their own
// path and query, so a base path here would be ambiguous (prepended?
// replaced?); rejecting it keeps routing obvious.
func parseUpstream(v string) (*url.URL, string) {
	const example = ", e.g. http://10.0.0.5:8080"
	u, err := url.Parse(v)
	switch {
	case !strings.Contains(v, "://"):
		return nil, "needs scheme://host" + example
	case err != nil:
		return nil, "not a URL" + example
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "scheme must be http or https" + example
	case u.Opaque != "" || u.Host == "":
		return nil, "needs scheme://host" + example
	case u.User != nil:
		return nil, "must not contain user info: it would show in logs and the API"
	case u.Hostname() == "":
		return nil, "needs a host" + example
	case strings.HasSuffix(u.Host, ":"):
		return nil, "empty port after the host" + example
	case (u.EscapedPath() != "" && u.EscapedPath() != "/") || u.RawQuery != "" || u.ForceQuery || strings.Contains(v, "#"):
		return nil, "only scheme://host[:port] is allowed: requests keep their own path and query"
	}
	if port := u.Port(); port != "" {
		if _, ok := parsePort(port); !ok {
			return nil, "port must be 1-65535"
		}
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, ""
}

func (p *parser) proxmoxNode(v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '-' && c != '.' {
			p.fail(KeyProxmoxNode, "not a PVE node name ([a-zA-Z0-9.-])")
			return
		}
	}
	p.node = v
}

func (p *parser) proxmoxVMID(v string) {
	// ParseUint rather than Atoi: "+101" and "-1" are not ids.
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > 999_999_999 {
		p.fail(KeyProxmoxVMID, "not a VMID (an integer 1-999999999; PVE uses 100 and up)")
		return
	}
	p.vmid = int(n)
}

func (p *parser) proxmoxType(v string) {
	switch t := strings.ToLower(v); t {
	case GuestLXC, GuestQEMU:
		p.ptype = t
	default:
		p.fail(KeyProxmoxType, "must be lxc or qemu")
	}
}

// parsePort parses a port 1..65535 in decimal digits only.
func parsePort(s string) (uint16, bool) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint16(n), true
}

func isDigits(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// maxReplicas bounds sleeper.replicas: a typo such as 30000 must not ask a
// cluster for thirty thousand tasks.
const maxReplicas = 1000

func (p *parser) replicas(v string) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < 1 || n > maxReplicas {
		p.fail(KeyReplicas, "not a replica count (1-%d)", maxReplicas)
		return
	}
	p.spec.Replicas = n
}
