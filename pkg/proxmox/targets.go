package proxmox

import (
	"cmp"
	"fmt"
	"strconv"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// Provider is the name the API shows for a container whose workload is a
// Proxmox guest.
const Provider = "proxmox"

// Guests hands out the runtime of one guest; *Runtime implements it.
type Guests interface {
	For(node string, vmid int) watcher.Runtime
}

// Targets tells the watcher which containers are stubs for a Proxmox guest:
// those whose labels name a node and VMID (labels.Spec.Proxmox). The zero
// value, with no Guests, is what sleeper runs without --proxmox-url: a stub
// is then a config error rather than a container driven as itself.
type Targets struct {
	// Guests drives the guests; nil means Proxmox support is not configured.
	Guests Guests
	// Prefix is the label prefix, for the error; labels.DefaultPrefix when empty.
	Prefix string
}

var (
	_ watcher.Targets = Targets{}
	_ Guests          = (*Runtime)(nil)
	_ watcher.Runtime = (*Guest)(nil)
)

// Target implements watcher.Targets.
func (t Targets) Target(spec labels.Spec) (watcher.Target, bool, error) {
	p := spec.Proxmox
	if p == nil {
		return watcher.Target{}, false, nil
	}
	if t.Guests == nil {
		return watcher.Target{}, false, fmt.Errorf("label %s.%s: Proxmox support is not configured (set --proxmox-url)",
			cmp.Or(t.Prefix, labels.DefaultPrefix), labels.KeyProxmoxNode)
	}
	return watcher.Target{Key: Key(p.Node, p.VMID), Provider: Provider, Runtime: t.Guests.For(p.Node, p.VMID)}, true, nil
}

// Key is the watcher.Target key of one guest: the stubs that name the same
// node and VMID share it. The poller's changes name a guest by node and
// VMID; Key turns them into what Registry.StubNames takes.
func Key(node string, vmid int) string { return node + "/" + strconv.Itoa(vmid) }
