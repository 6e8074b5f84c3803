package proxmox

import (
	"errors"
	"testing"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// guestsFunc is a Guests from a function.
type guestsFunc func(node string, vmid int) watcher.Runtime

func (f guestsFunc) For(node string, vmid int) watcher.Runtime { return f(node, vmid) }

// TestTargets: a spec naming a guest is a stub keyed by node and VMID, a
// spec naming none is its own workload, and without Guests a stub is the
// config error sleeper has always given.
func TestTargets(t *testing.T) {
	t.Parallel()
	stub := labels.Spec{Proxmox: &labels.Proxmox{Node: "pve1", VMID: 105}}
	var asked []string
	guests := guestsFunc(func(node string, vmid int) watcher.Runtime {
		asked = append(asked, Key(node, vmid))
		return nil
	})
	got, ok, err := Targets{Guests: guests}.Target(stub)
	if err != nil || !ok || got.Key != "pve1/105" || got.Provider != "proxmox" || len(asked) != 1 || asked[0] != "pve1/105" {
		t.Fatalf("stub: %+v %v %v (asked %v), want key pve1/105, provider proxmox", got, ok, err, asked)
	}
	if _, ok, err := (Targets{Guests: guests}).Target(labels.Spec{}); ok || err != nil {
		t.Fatalf("plain container: ok %v err %v, want its own workload", ok, err)
	}
	_, ok, err = Targets{Prefix: "acme"}.Target(stub)
	want := "label acme.proxmox.node: Proxmox support is not configured (set --proxmox-url)"
	if ok || err == nil || err.Error() != want {
		t.Fatalf("unconfigured: ok %v err %v, want %q", ok, err, want)
	}
	_, _, err = Targets{}.Target(stub)
	if err == nil || err.Error() != "label sleeper.proxmox.node: Proxmox support is not configured (set --proxmox-url)" || errors.Unwrap(err) != nil {
		t.Fatalf("unconfigured, default prefix: %v", err)
	}
}
