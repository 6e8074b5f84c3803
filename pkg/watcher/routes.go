package watcher

import (
	"fmt"
	"strings"

	"sleeper/pkg/labels"
)

// Routes is an immutable snapshot of who answers what.
type Routes struct {
	Hosts     map[string]*Watcher // exact host name
	Wildcards map[string]*Watcher // "example.com" for "*.example.com"
	Listen    map[uint16]*Watcher // sleeper.listen ports
	Streams   map[labels.Stream]*Watcher
	ByName    map[string]*Watcher
	owners    map[string]string // claim key → container name, for conflict messages
	// The dependency graph among managed containers, by name.
	deps       map[string][]string
	dependents map[string][]string
	// peers: for a stub whose workload other stubs also name, every stub
	// of that workload, sorted; and for a member of a sleeper.group, every
	// member: they sleep together.
	peers map[string][]string
	// groupMembers: every managed member of each sleeper.group, sorted.
	groupMembers map[string][]string
}

func newRoutes() *Routes {
	return &Routes{
		Hosts:      map[string]*Watcher{},
		Wildcards:  map[string]*Watcher{},
		Listen:     map[uint16]*Watcher{},
		Streams:    map[labels.Stream]*Watcher{},
		ByName:     map[string]*Watcher{},
		owners:     map[string]string{},
		deps:       map[string][]string{},
		dependents: map[string][]string{},
	}
}

// Lookup finds the watcher for a host name that is already lower-case,
// without port or trailing dot. A wildcard matches exactly one label.
func (rt *Routes) Lookup(host string) *Watcher {
	if w, ok := rt.Hosts[host]; ok {
		return w
	}
	if i := strings.IndexByte(host, '.'); i >= 0 {
		return rt.Wildcards[host[i+1:]]
	}
	return nil
}

func claimKeys(spec *labels.Spec) []string {
	keys := make([]string, 0, len(spec.Hosts)+len(spec.Listen)+len(spec.Streams))
	for _, h := range spec.Hosts {
		keys = append(keys, "host "+h)
	}
	for _, p := range spec.Listen {
		keys = append(keys, fmt.Sprintf("listen port %d", p))
	}
	for _, s := range spec.Streams {
		keys = append(keys, fmt.Sprintf("stream port %d/%s", s.Listen, s.Protocol))
	}
	return keys
}

func (rt *Routes) conflict(name string, spec *labels.Spec) error {
	for _, k := range claimKeys(spec) {
		if owner, ok := rt.owners[k]; ok {
			return fmt.Errorf("%s is already claimed by container %s", k, owner)
		}
	}
	return nil
}

func (rt *Routes) claim(w *Watcher) {
	spec := w.Spec()
	for _, k := range claimKeys(spec) {
		rt.owners[k] = w.Name()
	}
	for _, h := range spec.Hosts {
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			rt.Wildcards[rest] = w
		} else {
			rt.Hosts[h] = w
		}
	}
	for _, p := range spec.Listen {
		rt.Listen[p] = w
	}
	for _, s := range spec.Streams {
		rt.Streams[s] = w
	}
	rt.ByName[w.Name()] = w
}
