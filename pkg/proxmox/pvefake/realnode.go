package pvefake

import (
	"fmt"
	"net/netip"
	"time"
)

// RealNode switches on the behaviours of a real PVE node that a simple fake
// lacks, as read from Proxmox's sources (pve-container, pve-manager,
// pve-ha-manager, pve-http-server). The zero value is the newest node with
// none of the delays.
type RealNode struct {
	// NoInterfaces answers /lxc/{vmid}/interfaces with 501, as nodes with
	// pve-container older than 5.0.6 (late 2023) do.
	NoInterfaces bool
	// LastAddressOnly leaves out the full address list: inet and inet6
	// then hold only the last address of each family (often link-local
	// for IPv6), as before the list was added.
	LastAddressOnly bool
	// ResourcesRefresh makes /cluster/resources answer from a snapshot
	// refreshed this often, as pvestatd's 10 s node stats do; status/current
	// stays live. Zero: always current.
	ResourcesRefresh time.Duration
	// HADelay is how long the HA manager takes to act on an HA-managed
	// guest's hastart or hastop (its loop runs every 10 s on a real node).
	HADelay time.Duration
	// Second is how long one of PVE's seconds lasts in shutdown timing: a
	// shutdown task of a guest that ignores it takes 2×timeout+5 seconds
	// and fails without forceStop, and kills it at timeout with forceStop.
	// Zero: every task takes TaskDelay.
	Second time.Duration
	// AddressDelay is how long after its start an LXC shows its address
	// (DHCP takes a moment); until then only the link-local one.
	AddressDelay time.Duration
}

// SetRealNode switches real-node behaviours on or off.
func (s *Server) SetRealNode(r RealNode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.real = r
	s.snapshot = nil
}

func (s *Server) realNode() RealNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.real
}

// SetHA puts a guest under (or out of) HA management: its starts and stops
// become hastart and hastop tasks that only ask the HA manager, which acts
// RealNode.HADelay later.
func (s *Server) SetHA(vmid int, managed bool) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.ha = managed
}

// SetLock sets a guest's config lock ("backup", "migrate"…; "" clears it).
// A locked guest refuses to start, as PVE's check_lock does.
func (s *Server) SetLock(vmid int, lock string) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.lock = lock
}

// Lock returns a guest's config lock.
func (s *Server) Lock(vmid int) string {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	return g.lock
}

// SetResourceStatus makes /cluster/resources report status for the guest
// ("unknown" when its node's stats are missing); "" reports the real one.
func (s *Server) SetResourceStatus(vmid int, status string) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.resStatus = status
}

// SetAddresses gives an LXC's eth0 more addresses after its first one;
// inet and inet6 report the last of each family.
func (s *Server) SetAddresses(vmid int, extra ...netip.Addr) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.extra = extra
}

// SetUsage sets what status/current reports while the guest runs: mem in
// bytes (0 is DefaultMemory), cpu as PVE's fraction of the guest's cpus
// over its last interval, and cpus (0 is 1).
func (s *Server) SetUsage(vmid int, mem uint64, cpu float64, cpus int) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.mem, g.cpu, g.cpus = mem, cpu, cpus
}

// SetDHCP makes an LXC's config say ip=dhcp instead of its static address.
func (s *Server) SetDHCP(vmid int, dhcp bool) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.dhcp = dhcp
}

// Migrate moves a guest to another node, as a migration, an HA recovery or
// a rebalance on start does: calls naming the old node then fail with
// "Configuration file … does not exist".
func (s *Server) Migrate(vmid int, to string) {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.guests, guestKey{g.node, g.vmid})
	g.node = to
	s.guests[guestKey{to, g.vmid}] = g
}

// Node returns the node a guest is on now.
func (s *Server) Node(vmid int) string {
	g := s.byVMID(vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	return g.node
}

// Deny makes calls to an endpoint (Endpoint*) fail with 403 for want of a
// privilege, as PVE's permission check does; "" allows them again.
func (s *Server) Deny(endpoint, privilege string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if privilege == "" {
		delete(s.denied, endpoint)
		return
	}
	s.denied[endpoint] = privilege
}

func (s *Server) byVMID(vmid int) *guest {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, g := range s.guests {
		if k.vmid == vmid {
			return g
		}
	}
	panic(fmt.Sprintf("pvefake: no guest %d", vmid))
}
