package pvefake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const api = "/api2/json"

// handler serves one endpoint for an authenticated token id.
type handler func(w http.ResponseWriter, r *http.Request, user string)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, kind := range []string{"lxc", "qemu"} {
		base := api + "/nodes/{node}/" + kind + "/{vmid}/"
		mux.Handle("GET "+base+"status/current", s.endpoint(EndpointCurrent, s.current))
		mux.Handle("POST "+base+"status/start", s.endpoint(EndpointStart, s.start))
		mux.Handle("POST "+base+"status/shutdown", s.endpoint(EndpointShutdown, s.shutdown))
		mux.Handle("POST "+base+"status/stop", s.endpoint(EndpointStop, s.stop))
	}
	mux.Handle("GET "+api+"/nodes/{node}/lxc/{vmid}/interfaces", s.endpoint(EndpointInterfaces, s.interfaces))
	mux.Handle("GET "+api+"/nodes/{node}/lxc/{vmid}/config", s.endpoint(EndpointConfig, s.config))
	mux.Handle("POST "+api+"/nodes/{node}/qemu/{vmid}/status/suspend", s.endpoint(EndpointSuspend, s.suspend))
	mux.Handle("POST "+api+"/nodes/{node}/qemu/{vmid}/status/resume", s.endpoint(EndpointResume, s.resume))
	mux.Handle("GET "+api+"/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces", s.endpoint(EndpointAgent, s.agentInterfaces))
	mux.Handle("GET "+api+"/nodes/{node}/tasks/{upid}/status", s.endpoint(EndpointTaskStatus, s.taskStatus))
	mux.Handle("GET "+api+"/cluster/resources", s.endpoint(EndpointResources, s.resources))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotImplemented, fmt.Sprintf("Method '%s %s' not implemented", r.Method, r.URL.Path),
			map[string]any{"data": nil})
	})
	return mux
}

// endpoint counts the call, then checks the token as pveproxy does: a call
// without a valid one waits UnauthorizedDelay and gets a 401 whose reason is
// always "Authentication failed!" and whose body is empty (pve-http-server
// tells a client nothing of why). Then the privilege, as Deny says.
func (s *Server) endpoint(name string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[name]++
		s.mu.Unlock()
		user, reason := s.authenticate(r.Header.Get("Authorization"))
		if reason != "" {
			s.mu.Lock()
			s.calls[EndpointUnauthorized]++
			s.mu.Unlock()
			t := time.NewTimer(s.cfg.UnauthorizedDelay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-s.done:
			}
			writeStatus(w, http.StatusUnauthorized, "Authentication failed!", nil)
			return
		}
		s.mu.Lock()
		priv := s.denied[name]
		s.mu.Unlock()
		if priv != "" {
			writeStatus(w, http.StatusForbidden, fmt.Sprintf("Permission check failed (/vms/%s, %s)", r.PathValue("vmid"), priv),
				map[string]any{"data": nil})
			return
		}
		h(w, r, user)
	})
}

// authenticate returns the token id, or the reason phrase of the 401.
func (s *Server) authenticate(header string) (user, reason string) {
	rest, ok := strings.CutPrefix(header, "PVEAPIToken=")
	if !ok {
		return "", "No ticket"
	}
	id, secret, ok := strings.Cut(rest, "=")
	if !ok || id != s.cfg.TokenID {
		u, tok, _ := strings.Cut(id, "!")
		return "", fmt.Sprintf("no such token '%s' for user '%s'", tok, u)
	}
	if secret != s.cfg.Secret {
		return "", "invalid token value!"
	}
	return id, ""
}

// lookup finds the LXC guest of a request, or answers the error PVE gives.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*guest, bool) {
	node := r.PathValue("node")
	raw := r.PathValue("vmid")
	vmid, err := strconv.Atoi(raw)
	if err != nil || vmid < 100 {
		writeParamError(w, map[string]string{"vmid": fmt.Sprintf("type check ('integer') failed - got '%s'", raw)})
		return nil, false
	}
	s.mu.Lock()
	g := s.guests[guestKey{node, vmid}]
	known := s.nodeKnownLocked(node)
	s.mu.Unlock()
	if !known {
		writeGuestError(w, fmt.Sprintf("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", node, node))
		return nil, false
	}
	kind := "lxc"
	if strings.Contains(r.URL.Path, "/qemu/") {
		kind = "qemu"
	}
	if g == nil || g.kind != kind {
		dir := map[string]string{"lxc": "lxc", "qemu": "qemu-server"}[kind]
		writeGuestError(w, fmt.Sprintf("Configuration file 'nodes/%s/%s/%d.conf' does not exist", node, dir, vmid))
		return nil, false
	}
	return g, true
}

func (s *Server) nodeKnownLocked(node string) bool {
	for k := range s.guests {
		if k.node == node {
			return true
		}
	}
	return false
}

func (s *Server) current(w http.ResponseWriter, r *http.Request, _ string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	now := time.Now()
	st := map[string]any{
		"vmid": g.vmid, "name": g.name, "status": "stopped", "uptime": g.uptime(now), "type": g.kind,
		"cpus": max(g.cpus, 1), "cpu": 0, "maxmem": 512 << 20, "mem": 0, "maxswap": 512 << 20, "swap": 0,
		"maxdisk": 8 << 30, "disk": 1 << 30, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
		"ha": map[string]any{"managed": 0},
	}
	if g.ha {
		st["ha"] = map[string]any{"managed": 1, "state": "started", "group": ""}
	}
	if g.lock != "" {
		st["lock"] = g.lock
	}
	if g.running {
		st["status"] = "running"
		st["mem"] = uint64(DefaultMemory)
		if g.mem != 0 {
			st["mem"] = g.mem
		}
		st["cpu"] = g.cpu
		st["pid"] = 40000 + g.vmid
	}
	if g.kind == "qemu" {
		delete(st, "type")
		st["qmpstatus"] = st["status"]
		if g.running && g.paused {
			st["qmpstatus"] = "paused"
		}
		st["agent"] = map[bool]int{true: 1, false: 0}[g.agent]
	}
	s.mu.Unlock()
	writeData(w, st)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request, user string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	form, ok := readParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	if g.running {
		s.mu.Unlock()
		writeGuestError(w, fmt.Sprintf("%s %d already running", g.kindWord(), g.vmid))
		return
	}
	if g.lock != "" && !(g.kind == "qemu" && g.lock == "suspended") {
		s.mu.Unlock()
		writeGuestError(w, fmt.Sprintf("%s %d is locked (%s)", g.kindWord(), g.vmid, g.lock))
		return
	}
	s.forms[EndpointStart] = form
	var upid string
	if g.ha {
		upid = s.startTaskLocked(g.node, "hastart", g.vmid, user, s.haWork(g, true))
	} else {
		upid = s.startTaskLocked(g.node, g.taskType("start"), g.vmid, user, s.startWork(g))
	}
	s.mu.Unlock()
	writeData(w, upid)
}

func (s *Server) shutdown(w http.ResponseWriter, r *http.Request, user string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	form, ok := readParams(w, r)
	if !ok {
		return
	}
	timeout, force, perr := shutdownParams(form)
	if perr != nil {
		writeParamError(w, perr)
		return
	}
	s.mu.Lock()
	if !g.running {
		s.mu.Unlock()
		writeGuestError(w, fmt.Sprintf("%s %d not running", g.kindWord(), g.vmid))
		return
	}
	s.forms[EndpointShutdown] = form
	var upid string
	if g.ha {
		upid = s.startTaskLocked(g.node, "hastop", g.vmid, user, s.haWork(g, false))
	} else {
		upid = s.startTaskForLocked(g.node, g.taskType("shutdown"), g.vmid, user,
			s.shutdownTiming(g, timeout, force), s.shutdownWork(g, timeout, force))
	}
	s.mu.Unlock()
	writeData(w, upid)
}

// shutdownParams checks timeout (integer ≥ 0, default 60) and forceStop
// (a PVE boolean) as PVE's schema does.
func shutdownParams(form url.Values) (timeout int, force bool, errs map[string]string) {
	errs = map[string]string{}
	timeout = 60
	if v := form.Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			errs["timeout"] = fmt.Sprintf("type check ('integer') failed - got '%s'", v)
		case n < 0:
			errs["timeout"] = "value must have a minimum value of 0"
		default:
			timeout = n
		}
	}
	if v := form.Get("forceStop"); v != "" {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			force = true
		case "0", "false", "no", "off":
		default:
			errs["forceStop"] = fmt.Sprintf("type check ('boolean') failed - got '%s'", v)
		}
	}
	if len(errs) == 0 {
		errs = nil
	}
	return timeout, force, errs
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request, user string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	form, ok := readParams(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	if !g.running {
		s.mu.Unlock()
		writeGuestError(w, fmt.Sprintf("%s %d not running", g.kindWord(), g.vmid))
		return
	}
	s.forms[EndpointStop] = form
	var upid string
	if g.ha {
		upid = s.startTaskLocked(g.node, "hastop", g.vmid, user, s.haWork(g, false))
	} else {
		upid = s.startTaskLocked(g.node, g.taskType("stop"), g.vmid, user, s.stopWork(g))
	}
	s.mu.Unlock()
	writeData(w, upid)
}

func (s *Server) interfaces(w http.ResponseWriter, r *http.Request, _ string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	running, vmid, real := g.running, g.vmid, s.real
	addrs := append([]netip.Addr{g.addr}, g.extra...)
	if time.Since(g.startedAt) < real.AddressDelay {
		addrs = nil
	}
	s.mu.Unlock()
	if real.NoInterfaces {
		writeStatus(w, http.StatusNotImplemented, fmt.Sprintf("Method 'GET %s' not implemented", strings.TrimPrefix(r.URL.Path, api)),
			map[string]any{"data": nil})
		return
	}
	if !running {
		writeData(w, nil) // PVE answers {"data": null} for a stopped guest
		return
	}
	mac := fmt.Sprintf("bc:24:11:%02x:%02x:%02x", (vmid>>16)&0xff, (vmid>>8)&0xff, vmid&0xff)
	// The kernel lists the link-local address last: on a node that keeps
	// only the last one of each family, inet6 is the link-local one.
	addrs = append(addrs, netip.MustParseAddr(fmt.Sprintf("fe80::be24:11ff:fe%02x:%02x%02x",
		(vmid>>16)&0xff, (vmid>>8)&0xff, vmid&0xff)))
	eth0 := map[string]any{"name": "eth0", "hwaddr": mac}
	var list []map[string]any
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		fam, bits := "inet", 24
		if a.Is6() {
			fam, bits = "inet6", 64
		}
		eth0[fam] = fmt.Sprintf("%s/%d", a, bits)
		list = append(list, map[string]any{"ip-address": a.String(), "ip-address-type": fam, "prefix": bits})
	}
	if !real.LastAddressOnly {
		eth0["ip-addresses"] = list
	}
	writeData(w, []map[string]any{
		{"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"},
		eth0,
	})
}

// config answers an LXC's configuration: its static address lives in net0.
func (s *Server) config(w http.ResponseWriter, r *http.Request, _ string) {
	g, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	net0 := fmt.Sprintf("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:%02X", g.vmid&0xff)
	switch {
	case g.dhcp:
		net0 += ",ip=dhcp"
	case g.addr.Is4():
		net0 += ",ip=" + g.addr.String() + "/24"
	case g.addr.Is6():
		net0 += ",ip6=" + g.addr.String() + "/64"
	}
	cfg := map[string]any{"hostname": g.name, "memory": 512, "net0": net0 + ",type=veth", "digest": "0123abcd"}
	if g.lock != "" {
		cfg["lock"] = g.lock
	}
	writeData(w, cfg)
}

func (s *Server) taskStatus(w http.ResponseWriter, r *http.Request, _ string) {
	upid := r.PathValue("upid")
	s.mu.Lock()
	t := s.tasks[upid]
	var m map[string]any
	if t != nil && t.node == r.PathValue("node") {
		m = t.json()
	}
	s.mu.Unlock()
	if m == nil {
		writeParamError(w, map[string]string{"upid": "no such task"})
		return
	}
	writeData(w, m)
}

func (s *Server) resources(w http.ResponseWriter, r *http.Request, _ string) {
	typ := r.URL.Query().Get("type")
	s.mu.Lock()
	if every := s.real.ResourcesRefresh; every > 0 && typ == "vm" {
		if s.snapshot == nil || time.Since(s.snapshotAt) >= every {
			s.snapshot, s.snapshotAt = s.resourcesLocked(typ), time.Now()
		}
		out := s.snapshot
		s.mu.Unlock()
		writeData(w, out)
		return
	}
	out := s.resourcesLocked(typ)
	s.mu.Unlock()
	writeData(w, out)
}

// resourcesLocked lists the cluster's resources. Callers hold s.mu.
func (s *Server) resourcesLocked(typ string) []map[string]any {
	now := time.Now()
	var out []map[string]any
	nodes := map[string]bool{}
	for _, g := range s.guests {
		nodes[g.node] = true
		if typ != "" && typ != "vm" {
			continue
		}
		status := "stopped"
		if g.running {
			status = "running"
		}
		if g.resStatus != "" {
			status = g.resStatus
		}
		m := map[string]any{
			"id": fmt.Sprintf("%s/%d", g.kind, g.vmid), "type": g.kind, "vmid": g.vmid, "node": g.node,
			"name": g.name, "status": status, "uptime": g.uptime(now), "template": 0,
			"maxmem": 512 << 20, "maxdisk": 8 << 30, "maxcpu": 1,
		}
		if g.lock != "" {
			m["lock"] = g.lock
		}
		if g.ha {
			m["hastate"] = map[bool]string{true: "started", false: "stopped"}[g.running]
		}
		out = append(out, m)
	}
	if typ == "" || typ == "node" {
		for n := range nodes {
			out = append(out, map[string]any{"id": "node/" + n, "type": "node", "node": n, "status": "online"})
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
	if out == nil {
		out = []map[string]any{}
	}
	return out
}

// readParams reads a POST's parameters, form-encoded as the PVE UI sends
// them or as JSON, which pveproxy accepts too; JSON booleans become 1/0.
func readParams(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := r.ParseForm(); err != nil {
			writeStatus(w, http.StatusBadRequest, "Bad Request", map[string]any{"data": nil})
			return nil, false
		}
		return r.Form, true
	}
	out := r.URL.Query()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m map[string]any
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, &m)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "Bad Request", map[string]any{"data": nil})
		return nil, false
	}
	for k, v := range m {
		switch v := v.(type) {
		case bool:
			out.Set(k, map[bool]string{true: "1", false: "0"}[v])
		case float64:
			out.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
		case string:
			out.Set(k, v)
		default:
			b, _ := json.Marshal(v)
			out.Set(k, string(b))
		}
	}
	return out, true
}

func writeData(w http.ResponseWriter, data any) {
	b, _ := json.Marshal(map[string]any{"data": data})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(b)
}

// writeGuestError answers as PVE does when an API method dies: 500 with the
// message as the reason phrase, and again in the body.
func writeGuestError(w http.ResponseWriter, msg string) {
	writeStatus(w, http.StatusInternalServerError, msg, map[string]any{"data": nil, "message": msg + "\n"})
}

func writeParamError(w http.ResponseWriter, errs map[string]string) {
	writeStatus(w, http.StatusBadRequest, "Parameter verification failed.", map[string]any{"data": nil, "errors": errs})
}

// writeStatus writes a response with a reason phrase of PVE's choosing.
// net/http always writes the standard phrase, so the connection is taken
// over and the response written by hand (HTTP/1.1, as pveproxy speaks).
func writeStatus(w http.ResponseWriter, code int, reason string, body any) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	reason = strings.NewReplacer("\r", " ", "\n", " ").Replace(reason)
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(code)
		_, _ = w.Write(b)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		code, reason, len(b))
	_, _ = buf.Write(b)
	_ = buf.Flush()
}
