package proxmox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"sleeper/pkg/labels"
)

// Stub is what one stub container asks of its guest: the registry knows,
// the runtime of a guest (bound by node and vmid only) does not.
type Stub struct {
	Container  string            // the stub container's name
	Type       string            // sleeper.proxmox.type: TypeLXC, TypeQEMU or "" (find it)
	StopMethod labels.StopMethod // sleeper.stop_method
	Upstream   bool              // sleeper.upstream is set: no address is needed
}

// StubsFunc lists the stub containers that name a guest by its label node
// and vmid.
type StubsFunc func(node string, vmid int) []Stub

// ConfigError is a stub container's label that does not fit the guest PVE
// has: a type that is not the guest's, or a stop method its type lacks.
type ConfigError struct {
	Container string
	Label     string // with its prefix: "sleeper.proxmox.type"
	Value     string
	Reason    string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("container %s: label %s=%s: %s", e.Container, e.Label, e.Value, e.Reason)
}

// ErrNoVMAddress is wrapped by a VM's wake that found no address to dial.
var ErrNoVMAddress = errors.New("the VM shows no address: set sleeper.upstream, " +
	"or install and enable the QEMU guest agent (qemu-guest-agent in the VM, Options → QEMU Guest Agent in PVE)")

func (g *Guest) stubs() []Stub {
	f := g.rt.stubs.Load()
	if f == nil {
		return nil
	}
	return (*f)(g.label, g.vmid)
}

// declaredType is the type a stub's label gives, "" when none does.
func (g *Guest) declaredType(stubs []Stub) string {
	for _, s := range stubs {
		if s.Type != "" {
			return s.Type
		}
	}
	return ""
}

// locate returns the node the guest is on and its type, finding both in
// the cluster's resource list the first time (the label's node is where to
// look first, not a pin), and checks the stubs' labels against the type.
func (g *Guest) locate(ctx context.Context) (node, kind string, err error) {
	g.mu.Lock()
	node, kind = g.node, g.kind
	g.mu.Unlock()
	stubs := g.stubs()
	if kind == "" {
		node, kind, err = g.find(ctx, stubs)
		if err != nil {
			return "", "", err
		}
	}
	return node, kind, g.checkStubs(stubs, node, kind)
}

// find looks the vmid up in /cluster/resources. A guest the list lacks is
// looked for on the label's node, where the calls then say why it fails.
func (g *Guest) find(ctx context.Context, stubs []Stub) (node, kind string, err error) {
	node, kind = g.label, g.declaredType(stubs)
	res, err := g.rt.client.Resources(ctx)
	if err != nil && kind == "" {
		return "", "", g.wrap("find the guest in the cluster", err)
	}
	if i := slices.IndexFunc(res, func(r Resource) bool { return r.VMID == g.vmid }); i >= 0 {
		node, kind = res[i].Node, res[i].Type
		if node != g.label {
			g.log.Info("guest found on another node than its label says", "now_on", node)
		}
	}
	if kind == "" {
		kind = TypeLXC
	}
	g.mu.Lock()
	g.node, g.kind = node, kind
	g.mu.Unlock()
	return node, kind, nil
}

// checkStubs returns a ConfigError for the first stub whose labels do not
// fit the guest: the labels package cannot know the type unless the label
// gives it.
func (g *Guest) checkStubs(stubs []Stub, node, kind string) error {
	for _, s := range stubs {
		if s.Type != "" && s.Type != kind {
			return &ConfigError{Container: s.Container, Label: g.rt.label(labels.KeyProxmoxType), Value: s.Type,
				Reason: fmt.Sprintf("guest %d on %s is a %s", g.vmid, node, typeWord(kind))}
		}
		if kind == TypeLXC && (s.StopMethod == labels.StopMethodPause || s.StopMethod == labels.StopMethodHibernate) {
			return &ConfigError{Container: s.Container, Label: g.rt.label(labels.KeyStopMethod), Value: string(s.StopMethod),
				Reason: fmt.Sprintf("not supported for guest %d on %s, a Proxmox LXC (only stop and kill)", g.vmid, node)}
		}
	}
	return nil
}

func typeWord(kind string) string {
	if kind == TypeQEMU {
		return "QEMU virtual machine (qemu)"
	}
	return "container (" + kind + ")"
}

// relocate follows a guest that PVE says is not where we looked: after a
// migration, an HA recovery or a rebalance the old node answers "does not
// exist". It reports whether the guest is now known elsewhere.
func (g *Guest) relocate(ctx context.Context, err error) bool {
	if !errors.Is(err, ErrNotFound) {
		return false
	}
	g.mu.Lock()
	old := g.node
	g.mu.Unlock()
	node, _, ferr := g.find(ctx, g.stubs())
	if ferr != nil || node == old {
		return false
	}
	g.log.Info("guest moved, following it", "from", old, "to", node)
	return true
}

// do runs op where the guest is, and once more where it went when PVE says
// it is not there.
func (g *Guest) do(ctx context.Context, op func(node, kind string) error) error {
	node, kind, err := g.locate(ctx)
	if err != nil {
		return err
	}
	err = op(node, kind)
	if err != nil && ctx.Err() == nil && g.relocate(ctx, err) {
		node, kind, lerr := g.locate(ctx)
		if lerr != nil {
			return lerr
		}
		return op(node, kind)
	}
	return err
}

// usesUpstream reports whether every stub of the guest sets sleeper.upstream:
// then no address is needed and none is waited for.
func usesUpstream(stubs []Stub) bool {
	if len(stubs) == 0 {
		return false
	}
	for _, s := range stubs {
		if !s.Upstream {
			return false
		}
	}
	return true
}

// notImplemented matches the 501 of a node without the endpoint.
func notImplemented(err error) bool {
	var api *APIError
	return errors.As(err, &api) && api.Status == http.StatusNotImplemented
}
