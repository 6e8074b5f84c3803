package watcher

import (
	"context"
	"slices"
	"strings"
)

// groupPeers lists, for each managed member of a sleeper.group with at
// least two managed members, every member of its group, sorted by name.
func groupPeers(rt *Routes) map[string][]string {
	return peersBy(rt, func(w *Watcher) string { return w.Spec().Group })
}

// peersBy lists, for each managed container whose key (a group, a shared
// workload; "" for none) at least one other container shares, every
// container with that key, itself included, sorted by name.
func peersBy(rt *Routes, key func(*Watcher) string) map[string][]string {
	byKey := map[string][]string{}
	for n, w := range rt.ByName {
		if k := key(w); k != "" {
			byKey[k] = append(byKey[k], n)
		}
	}
	peers := map[string][]string{}
	for _, names := range byKey {
		if len(names) < 2 {
			continue
		}
		slices.Sort(names)
		for _, n := range names {
			peers[n] = names
		}
	}
	return peers
}

// mergePeers joins two "sleep together" relations into one: containers
// linked through either (a group, a shared Proxmox guest) sleep together,
// transitively, through the one mechanism (Registry.SleepTogether).
func mergePeers(a, b map[string][]string) map[string][]string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	parent := map[string]string{}
	var find func(string) string
	find = func(n string) string {
		p, ok := parent[n]
		if !ok || p == n {
			parent[n] = n
			return n
		}
		root := find(p)
		parent[n] = root
		return root
	}
	for _, m := range []map[string][]string{a, b} {
		for n, names := range m {
			for _, o := range names {
				parent[find(o)] = find(n)
			}
		}
	}
	sets := map[string][]string{}
	for n := range parent {
		r := find(n)
		sets[r] = append(sets[r], n)
	}
	out := map[string][]string{}
	for _, names := range sets {
		slices.Sort(names)
		for _, n := range names {
			out[n] = names
		}
	}
	return out
}

// groupWaker is implemented by a Graph that knows groups (the Registry):
// a wake of one member starts the wake of every other.
type groupWaker interface {
	GroupMembers(name string) []*Watcher
}

// GroupMembers returns the other managed members of the named container's
// group, or nil.
func (r *Registry) GroupMembers(name string) []*Watcher {
	rt := r.Routes()
	self := rt.ByName[name]
	if self == nil || self.Spec().Group == "" {
		return nil
	}
	var out []*Watcher
	for _, n := range rt.groupMembers[self.Spec().Group] {
		if n != name {
			out = append(out, rt.ByName[n])
		}
	}
	return out
}

// groupMembers lists the managed containers of every group by name.
func groupMembers(rt *Routes) map[string][]string {
	out := map[string][]string{}
	for n, w := range rt.ByName {
		if g := w.Spec().Group; g != "" {
			out[g] = append(out[g], n)
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// wakeGroup starts the wake of every other member of the container's
// group, in parallel with its own (each wakes its dependencies first, as
// usual), and reports their progress on this wake for the loading page.
// A member's failure does not fail this wake: it is the member's own.
func (w *Watcher) wakeGroup(op *wakeOp) {
	gw, ok := w.graph.(groupWaker)
	if !ok {
		return
	}
	members := gw.GroupMembers(w.name)
	if len(members) == 0 {
		return
	}
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name()
		m.Kick()
	}
	w.log.Info("waking group", "group", w.spec.Load().Group, "members", strings.Join(names, ","))
	for _, m := range members {
		w.emit(op, EventDependencyWaking, "starting "+m.Name()+" (group "+w.spec.Load().Group+")")
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			ctx, cancel := context.WithTimeout(w.lifetime, m.Spec().WakeTimeout)
			defer cancel()
			if _, err := m.Wait(ctx); err == nil {
				w.emit(op, EventDependencyReady, m.Name()+" ready")
			}
		}()
	}
}
