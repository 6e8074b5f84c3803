package watcher

import (
	"context"
	"slices"

	"sleeper/pkg/labels"
)

func isStub(spec *labels.Spec) bool { return spec != nil && spec.Proxmox != nil }

// ObserveGuest inspects the Proxmox guest of a stub container and feeds the
// watcher; it does nothing for other containers. A failure is logged once
// per distinct reason and leaves the watcher as it was: a request still gets
// a wake, which fails with the reason.
func (r *Registry) ObserveGuest(ctx context.Context, name string) {
	r.mu.Lock()
	e := r.entries[name]
	if e == nil || e.w == nil || !isStub(e.spec) {
		r.mu.Unlock()
		return
	}
	w, rt, prev := e.w, e.w.rt, e.guestErr
	r.mu.Unlock()
	c, err := rt.Inspect(ctx, "")
	r.mu.Lock()
	if e := r.entries[name]; e != nil {
		e.guestErr = ""
		if err != nil {
			e.guestErr = err.Error()
		}
	}
	r.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && err.Error() != prev {
			r.log.Warn("proxmox guest not reachable", "container", name, "error", err)
		}
		return
	}
	w.Observe(c)
}

// GuestNames returns the stub containers that configure a Proxmox guest.
func (r *Registry) GuestNames(node string, vmid int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n, e := range r.entries {
		if isStub(e.spec) && e.spec.Proxmox.Node == node && e.spec.Proxmox.VMID == vmid {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
