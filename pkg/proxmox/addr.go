package proxmox

import (
	"context"
	"net/netip"
)

// pickAddr returns the address to dial: the first IPv4 address of an
// interface other than lo, else the first global IPv6 one; the full address
// list wins over inet/inet6, which hold only the last address of each
// family. Link-local addresses are never picked. The loopback interface is
// skipped by name, not by address range: a guest's addresses are never
// loopback in practice, and the test fake's guest is 127.0.0.2.
func pickAddr(ifs []Interface) (netip.Addr, bool) {
	var v6 netip.Addr
	for _, i := range ifs {
		if i.Name == "lo" {
			continue
		}
		all := i.Addrs
		if len(all) == 0 {
			for _, s := range []string{i.Inet, i.Inet6} {
				if a, ok := parseInet(s); ok {
					all = append(all, a)
				}
			}
		}
		for _, a := range all {
			switch {
			case a.Is4():
				return a, true
			case !v6.IsValid() && a.Is6() && a.IsGlobalUnicast() && !a.IsLinkLocalUnicast():
				v6 = a
			}
		}
	}
	return v6, v6.IsValid()
}

// parseInet reads "192.0.2.10/24", or a bare address.
func parseInet(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), true
	}
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

// lxcAddr returns a running LXC's address: from /interfaces, else (nodes
// before pve-container 5.0.6 answer 501) from the static ip= of its config.
func (g *Guest) lxcAddr(ctx context.Context, node string) (netip.Addr, bool, error) {
	if !g.rt.noInterfaces.Load() {
		ifs, err := g.rt.client.Interfaces(ctx, node, g.vmid)
		if err == nil {
			a, ok := pickAddr(ifs)
			return a, ok, nil
		}
		if !notImplemented(err) {
			return netip.Addr{}, false, err
		}
		g.log.Info("this PVE node has no /interfaces (pve-container before 5.0.6): reading static addresses from guest configs")
		g.rt.noInterfaces.Store(true)
	}
	ifc, ok, err := g.rt.client.LXCConfigAddr(ctx, node, g.vmid)
	if err != nil || !ok {
		return netip.Addr{}, false, err
	}
	a, ok := pickAddr([]Interface{ifc})
	return a, ok, nil
}

// vmAddr returns a running VM's address from its QEMU guest agent.
func (g *Guest) vmAddr(ctx context.Context, node string) (netip.Addr, bool, error) {
	ifs, err := g.rt.client.AgentInterfaces(ctx, node, g.vmid)
	if err != nil {
		return netip.Addr{}, false, err
	}
	for _, i := range ifs {
		if i.Name == "lo" {
			continue
		}
		for _, a := range i.Addrs {
			if a.Is4() {
				return a, true, nil
			}
		}
	}
	return netip.Addr{}, false, nil
}
