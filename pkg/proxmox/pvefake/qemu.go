package pvefake

import (
	"fmt"
	"net/http"
	"time"
)

// suspend pauses a running VM in memory (status stays running, qmpstatus
// paused) or, with todisk=1, saves its memory to a state volume and stops
// it with lock "suspended" until the next start restores it.
func (s *Server) suspend(w http.ResponseWriter, r *http.Request, user string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	form, ok := readParams(w, r)
	if !ok {
		return
	}
	toDisk := false
	switch v := form.Get("todisk"); v {
	case "", "0", "false":
	case "1", "true":
		toDisk = true
	default:
		writeParamError(w, map[string]string{"todisk": fmt.Sprintf("type check ('boolean') failed - got '%s'", v)})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !g.running {
		writeGuestError(w, fmt.Sprintf("VM %d not running", g.vmid))
		return
	}
	if g.lock != "" {
		writeGuestError(w, fmt.Sprintf("VM %d is locked (%s)", g.vmid, g.lock))
		return
	}
	s.forms[EndpointSuspend] = form
	writeData(w, s.startTaskLocked(g.node, "qmsuspend", g.vmid, user, s.suspendWork(g, toDisk)))
}

func (s *Server) suspendWork(g *guest, toDisk bool) func() string {
	return func() string {
		if toDisk {
			_ = s.transition(g, false)
			s.mu.Lock()
			g.lock = "suspended"
			s.mu.Unlock()
			return "OK"
		}
		s.pause(g, true)
		return "OK"
	}
}

// pause flips a VM's qmpstatus, running the hooks: a paused VM's app does
// not answer.
func (s *Server) pause(g *guest, paused bool) {
	g.power.Lock()
	defer g.power.Unlock()
	s.mu.Lock()
	cur, info := g.paused, g.info()
	s.mu.Unlock()
	if cur == paused {
		return
	}
	if paused && s.cfg.OnStop != nil {
		s.cfg.OnStop(info)
	}
	if !paused && s.cfg.OnStart != nil {
		_ = s.cfg.OnStart(info)
	}
	s.mu.Lock()
	g.paused = paused
	s.mu.Unlock()
}

// resume continues a VM paused in memory. A running VM that is not paused
// resumes as a no-op, as qm resume does.
func (s *Server) resume(w http.ResponseWriter, r *http.Request, user string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	form, ok := readParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !g.running {
		writeGuestError(w, fmt.Sprintf("VM %d not running", g.vmid))
		return
	}
	s.forms[EndpointResume] = form
	writeData(w, s.startTaskLocked(g.node, "qmresume", g.vmid, user, func() string {
		s.pause(g, false)
		return "OK"
	}))
}

// agentInterfaces answers the guest agent's network-get-interfaces: only
// while the VM runs, is not paused, has an agent and has booted.
func (s *Server) agentInterfaces(w http.ResponseWriter, r *http.Request, _ string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	up := g.agent && g.running && !g.paused && time.Since(g.startedAt) >= g.agentDelay
	addr, vmid := g.addr, g.vmid
	s.mu.Unlock()
	if !up {
		if !g.agent {
			writeGuestError(w, "No QEMU guest agent configured")
			return
		}
		writeGuestError(w, fmt.Sprintf("VM %d qmp command 'guest-network-get-interfaces' failed - got timeout", vmid))
		return
	}
	ips := []map[string]any{
		{"ip-address-type": "ipv6", "ip-address": fmt.Sprintf("fe80::be24:11ff:fe00:%04x", vmid&0xffff), "prefix": 64},
	}
	if addr.IsValid() {
		fam := "ipv4"
		if addr.Is6() {
			fam = "ipv6"
		}
		ips = append([]map[string]any{{"ip-address-type": fam, "ip-address": addr.String(), "prefix": 24}}, ips...)
	}
	writeData(w, map[string]any{"result": []map[string]any{
		{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": []map[string]any{
			{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
			{"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128},
		}},
		{"name": "eth0", "hardware-address": fmt.Sprintf("bc:24:11:00:%02x:%02x", (vmid>>8)&0xff, vmid&0xff), "ip-addresses": ips},
	}})
}
