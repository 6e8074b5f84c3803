package labels

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// setters maps every known key to the method that parses its trimmed,
// non-empty value into the Spec. It doubles as the set of known keys, so a
// key cannot be accepted without being parsed; keys_test.go checks it
// against knownKeys.
var setters = map[string]func(*parser, string){
	KeyEnable:      (*parser).enable,
	KeyHosts:       (*parser).hosts,
	KeyPort:        (*parser).port,
	KeyScheme:      (*parser).scheme,
	KeyListen:      (*parser).listen,
	KeyStreams:     (*parser).streams,
	KeyStreamWake:  (*parser).streamWake,
	KeyIdleTimeout: (*parser).idleTimeout,
	KeyStopMethod:  (*parser).stopMethod,
	KeyStopSignal:  (*parser).stopSignal,
	KeyStopTimeout: (*parser).stopTimeout,
	KeyWakeTimeout: (*parser).wakeTimeout,
	KeyDependsOn:   (*parser).dependsOn,
	KeyWakePaths:   (*parser).wakePaths,
	KeyLoadingPage: (*parser).loadingPage,
	KeyReadyPath:   (*parser).readyPath,
	KeyNetwork:     (*parser).network,
	KeyUpstream:    (*parser).upstream,
	KeyHealthExec:  (*parser).healthExec,
	KeyProxmoxNode: (*parser).proxmoxNode,
	KeyProxmoxVMID: (*parser).proxmoxVMID,
	KeyProxmoxType: (*parser).proxmoxType,
	KeyReplicas:    (*parser).replicas,

	KeyIgnoreAgents: (*parser).ignoreAgents,
	KeyIgnoreCIDRs:  (*parser).ignoreCIDRs,
	KeyIgnorePaths:  (*parser).ignorePaths,
	KeyAwakeDuring:  (*parser).awakeDuring,
	KeyGroup:        (*parser).group,
	KeyBusyCPU:      (*parser).busyCPU,
}

// Parse reads the labels under opt.Prefix (DefaultPrefix when empty) into a
// Spec with every default applied. Labels outside the prefix (compose's and
// other tools') are ignored; an unknown key under the prefix is an error, so
// a typo never silently does nothing.
//
// When the enable label is absent or false Parse returns an error wrapping
// ErrNotEnabled and looks at nothing else. Otherwise it checks every label
// and returns all problems at once: *Error values sorted by key, joined with
// errors.Join. On error the Spec is the zero value.
func Parse(labels map[string]string, opt Options) (Spec, error) {
	prefix := prefixOf(opt.Prefix)
	enableKey := prefix + "." + KeyEnable
	raw, ok := labels[enableKey]
	if !ok {
		return Spec{}, fmt.Errorf("label %s is not set: %w", enableKey, ErrNotEnabled)
	}
	// An enable value that is not a bool is reported with the other label
	// errors below: the user clearly meant to opt in.
	if on, err := strconv.ParseBool(strings.TrimSpace(raw)); err == nil && !on {
		return Spec{}, fmt.Errorf("label %s=%q: %w", enableKey, raw, ErrNotEnabled)
	}

	p := &parser{prefix: prefix, opt: opt, labels: labels, raw: make(map[string]string)}
	for k, v := range labels {
		if key, ok := strings.CutPrefix(k, prefix+"."); ok {
			p.raw[key] = v
		}
	}
	p.parse()
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Key, b.Key) })
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return Spec{}, errors.Join(errs...)
	}
	return p.spec, nil
}

// Enabled reports whether the container opted in: "<prefix>.enable" (prefix
// DefaultPrefix when empty) parses as true. It is the cheap check discovery
// runs before Parse; a malformed value counts as not enabled here.
func Enabled(labels map[string]string, prefix string) bool {
	raw, ok := labels[prefixOf(prefix)+"."+KeyEnable]
	if !ok {
		return false
	}
	on, err := strconv.ParseBool(strings.TrimSpace(raw))
	return err == nil && on
}

// prefixOf applies the default and forgives a trailing dot, which users
// coming from Traefik ("traefik.") tend to type.
func prefixOf(prefix string) string {
	prefix = strings.TrimSuffix(prefix, ".")
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// parser holds one Parse call's state. It lives on the stack of Parse, which
// is why the setters may write to it freely.
type parser struct {
	prefix string
	opt    Options
	labels map[string]string // every label, for the foreign hosts
	raw    map[string]string // key without prefix → value as given
	spec   Spec
	errs   []*Error

	// Parsed halves of the proxmox pair, combined once both are known.
	node  string
	vmid  int
	ptype string
}

// parse applies the defaults, then every label in key order, then the rules
// that involve more than one label.
func (p *parser) parse() {
	p.spec = Spec{
		Scheme:      "http",
		IdleTimeout: p.opt.DefaultIdleTimeout,
		StopMethod:  StopMethodStop,
		StreamWake:  StreamWakeConnect,
		StopTimeout: DefaultStopTimeout,
		WakeTimeout: DefaultWakeTimeout,
		LoadingPage: true,
	}
	if !p.has(KeyHosts) {
		p.defaultHosts()
	}
	for _, key := range slices.Sorted(maps.Keys(p.raw)) {
		set, ok := setters[key]
		if !ok {
			p.fail(key, "%s", unknownReason(p.prefix, key))
			continue
		}
		v := strings.TrimSpace(p.raw[key])
		if v == "" {
			p.fail(key, "empty value; remove the label to get the default")
			continue
		}
		set(p, v)
	}
	p.crossCheck()
}

// defaultHosts applies, without a hosts label, the hosts of the foreign
// labels (--hosts-from) or else the --domain default: the app's own proxy
// labels say where it is served, the domain default only guesses.
func (p *parser) defaultHosts() {
	found, notes := ForeignHosts(p.labels, p.opt.HostsFrom)
	p.spec.HostNotes = notes
	if len(found) > 0 {
		for _, hs := range found {
			p.spec.Hosts = append(p.spec.Hosts, hs.Host)
		}
		p.spec.HostSources = found
		return
	}
	if p.opt.Domain == "" {
		return
	}
	name := strings.TrimPrefix(p.opt.Name, "/")
	domain := strings.TrimPrefix(p.opt.Domain, ".")
	// A container name is not always a DNS label (compose v1's
	// "proj_web_1"): then there is simply no default host, which is
	// not the user's mistake to report.
	if h, reason := normaliseHost(name + "." + domain); reason == "" {
		p.spec.Hosts = []string{h}
		p.spec.HostSources = []HostSource{{Host: h, Source: SourceDomain}}
	}
}

// crossCheck enforces the rules that span labels. Each error lands on the
// label the user most likely has to change.
func (p *parser) crossCheck() {
	switch {
	case p.has(KeyProxmoxNode) && !p.has(KeyProxmoxVMID):
		p.fail(KeyProxmoxNode, "needs %s too", p.full(KeyProxmoxVMID))
	case p.has(KeyProxmoxVMID) && !p.has(KeyProxmoxNode):
		p.fail(KeyProxmoxVMID, "needs %s too", p.full(KeyProxmoxNode))
	case p.node != "" && p.vmid > 0:
		p.spec.Proxmox = &Proxmox{Node: p.node, VMID: p.vmid, Type: p.ptype}
	}
	if p.has(KeyProxmoxType) && !p.has(KeyProxmoxNode) && !p.has(KeyProxmoxVMID) {
		p.fail(KeyProxmoxType, "needs %s and %s too", p.full(KeyProxmoxNode), p.full(KeyProxmoxVMID))
	}
	stub := p.has(KeyProxmoxNode) || p.has(KeyProxmoxVMID)
	if p.spec.StopMethod == StopMethodHibernate && !stub {
		p.fail(KeyStopMethod, "hibernate is only for Proxmox virtual machines (%s, %s)",
			p.full(KeyProxmoxNode), p.full(KeyProxmoxVMID))
	}
	if stub {
		// Without the type label the guest's type is known only to the
		// provider, which makes the same check against the cluster.
		if m := p.spec.StopMethod; p.ptype == "lxc" && (m == StopMethodPause || m == StopMethodHibernate) {
			p.fail(KeyStopMethod, "%s is not supported for Proxmox LXC (only stop and kill)", m)
		}
		// PVE's shutdown and stop calls take no signal, and an LXC has no
		// Docker network: silently ignoring these would hide a mistake.
		if p.has(KeyStopSignal) {
			p.fail(KeyStopSignal, "not supported for Proxmox guests: PVE shutdown and stop take no signal")
		}
		if p.has(KeyNetwork) {
			p.fail(KeyNetwork, "not supported for Proxmox guests: they have no Docker network")
		}
	}
	p.checkUpstream()
	p.checkListenStreams()
}

// checkUpstream keeps scheme and port consistent with an explicit upstream:
// the upstream is the whole address, so a different scheme or port label
// would be silently ignored.
func (p *parser) checkUpstream() {
	u := p.spec.Upstream
	if u == nil {
		return
	}
	if !p.has(KeyScheme) {
		p.spec.Scheme = u.Scheme
	} else if p.spec.Scheme != u.Scheme {
		p.fail(KeyScheme, "contradicts %s (scheme %s); drop one of them", p.full(KeyUpstream), u.Scheme)
	}
	if p.spec.Port == 0 {
		return
	}
	port := u.Port()
	switch {
	case port != "":
	case u.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	if want := strconv.Itoa(int(p.spec.Port)); port != want {
		p.fail(KeyPort, "contradicts %s (port %s); drop one of them", p.full(KeyUpstream), port)
	}
}

// checkListenStreams rejects a TCP stream on a port that is also an HTTP
// listener: both would bind the same TCP port on sleeper.
func (p *parser) checkListenStreams() {
	for _, s := range p.spec.Streams {
		if s.Protocol == TCP && slices.Contains(p.spec.Listen, s.Listen) {
			p.fail(KeyStreams, "%q: tcp port %d is also in %s", s.String(), s.Listen, p.full(KeyListen))
		}
	}
}

// has reports whether the label was given at all, valid or not.
func (p *parser) has(key string) bool {
	_, ok := p.raw[key]
	return ok
}

// full is the key as the user wrote it, with the prefix.
func (p *parser) full(key string) string {
	return p.prefix + "." + key
}

// fail records a problem with the label key (without prefix).
func (p *parser) fail(key, format string, args ...any) {
	p.errs = append(p.errs, &Error{
		Key:    p.full(key),
		Value:  p.raw[key],
		Reason: fmt.Sprintf(format, args...),
	})
}

// failItem records a problem with one item of a comma list, quoting the item
// only when the list has more than one: `"b_": …` helps in "a,b_", but in a
// one-item list it would just repeat the value.
func (p *parser) failItem(key, item, format string, args ...any) {
	if strings.TrimSpace(p.raw[key]) != item {
		format = "%q: " + format
		args = append([]any{item}, args...)
	}
	p.fail(key, format, args...)
}

// split cuts a comma list into trimmed items. Empty items ("a,,b", a
// trailing comma) are reported rather than skipped: they usually mean a
// value went missing in templating.
func (p *parser) split(key, v string) []string {
	var items []string
	empty := false
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			empty = true
			continue
		}
		items = append(items, item)
	}
	if empty {
		p.fail(key, "empty item in comma list")
	}
	return items
}

// unknownReason suggests the nearest known key, since most unknown keys are
// typos ("idle-timeout", "idle_timout").
func unknownReason(prefix, key string) string {
	best, bestDist := "", 3
	for _, k := range knownKeys {
		if d := distance(strings.ToLower(key), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown label; did you mean %s.%s?", prefix, best)
	}
	return "unknown label; known keys: " + strings.Join(knownKeys[:], ", ")
}

// distance is the Levenshtein distance between a and b, in bytes. Keys are
// short, so the quadratic cost is irrelevant; long inputs are cut off early
// because they cannot be near a key anyway.
func distance(a, b string) int {
	if len(a) > 2*len(b)+3 {
		return len(a)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
