// Package pvefake is a faithful in-process fake of the part of the Proxmox
// VE API that sleeper uses, for tests of any package: an httptest TLS server
// with PVE's envelope, API-token check (and pveproxy's delay on a wrong
// token), LXC guests whose start, shutdown and stop run as tasks with real
// UPIDs that finish after a delay, interfaces that are null while a guest is
// stopped, errors in the HTTP reason phrase, and the cluster resource list.
//
// Ownership: New starts the server; Close stops it, cancels the tasks that
// have not finished and waits for the ones finishing (and their hooks).
package pvefake

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultTokenID           = "sleeper@pve!sleeper"
	DefaultSecret            = "0b5e6f1c-3d2a-4e8f-9c7b-1a2b3c4d5e6f"
	DefaultUnauthorizedDelay = 3 * time.Second // what pveproxy waits
	DefaultTaskDelay         = 100 * time.Millisecond
	// DefaultMemory is the mem status/current reports for a running guest
	// until SetUsage says otherwise; a stopped guest reports 0.
	DefaultMemory = 64 << 20
)

// Endpoints, the keys of Calls and LastForm.
const (
	EndpointCurrent    = "status/current"
	EndpointStart      = "status/start"
	EndpointShutdown   = "status/shutdown"
	EndpointStop       = "status/stop"
	EndpointInterfaces = "interfaces"
	EndpointTaskStatus = "tasks/status"
	EndpointResources  = "cluster/resources"
	EndpointConfig     = "config"
	EndpointSuspend    = "status/suspend"
	EndpointResume     = "status/resume"
	EndpointAgent      = "agent/network-get-interfaces"
	// EndpointUnauthorized counts the calls refused for their token, on
	// top of their own endpoint's count.
	EndpointUnauthorized = "unauthorized"
)

// Guest describes a guest (LXC or VM) to the hooks.
type Guest struct {
	Node string
	VMID int
	Name string
	Type string     // "lxc" or "qemu"
	Addr netip.Addr // eth0's address while it runs
}

// Config builds a Server. The zero value is usable.
type Config struct {
	TokenID string // DefaultTokenID when empty
	Secret  string // DefaultSecret when empty
	// UnauthorizedDelay is how long a call with a wrong or missing token
	// waits for its 401. DefaultUnauthorizedDelay when zero; tests set a
	// few milliseconds.
	UnauthorizedDelay time.Duration
	// TaskDelay is how long start, shutdown and stop tasks run.
	// DefaultTaskDelay when zero; negative finishes them at once.
	TaskDelay time.Duration
	// OnStart runs when a guest is about to report running (its start task
	// finishing, or SetRunning): the guest's app starts here. An error
	// fails the start task with the error's text and the guest stays
	// stopped. Calls for one guest never overlap.
	OnStart func(Guest) error
	// OnStop runs when a guest is about to report stopped.
	OnStop func(Guest)
}

// Server is the fake PVE API. Its methods are safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	cfg  Config
	done chan struct{} // closed by Close: cuts pending 401 delays short
	wg   sync.WaitGroup

	mu     sync.Mutex
	guests map[guestKey]*guest
	tasks  map[string]*task
	calls  map[string]int
	forms  map[string]url.Values
	pid    int
	closed bool
	timers []*time.Timer // pending HA actions
	real   RealNode
	denied map[string]string // endpoint → missing privilege (403)
	// The /cluster/resources answer as of the last refresh, when
	// RealNode.ResourcesRefresh makes it stale.
	snapshot   []map[string]any
	snapshotAt time.Time
}

type guestKey struct {
	node string
	vmid int
}

type guest struct {
	kind         string // "lxc" or "qemu"
	node         string
	vmid         int
	name         string
	addr         netip.Addr
	extra        []netip.Addr // more addresses of eth0, after addr
	running      bool
	startedAt    time.Time
	failStart    string
	hangShutdown bool
	ha           bool   // managed by the HA stack: start and stop go through it
	lock         string // "backup", "migrate", "suspended" (a hibernated VM)…
	resStatus    string // what /cluster/resources says instead, e.g. "unknown"
	paused       bool   // a VM suspended in memory: running, qmpstatus paused
	agent        bool   // a VM whose guest agent runs (after agentDelay)
	agentDelay   time.Duration
	dhcp         bool    // the config says ip=dhcp instead of the address
	mem          uint64  // bytes in use while running; 0 is DefaultMemory
	cpu          float64 // PVE's cpu while running: a fraction of cpus
	cpus         int     // the guest's CPUs; 0 is 1
	// power serializes state transitions with their hooks, so that two
	// tasks finishing together never start the app twice.
	power sync.Mutex
}

func (g *guest) info() Guest {
	return Guest{Node: g.node, VMID: g.vmid, Name: g.name, Type: g.kind, Addr: g.addr}
}

// New starts a fake PVE API on a loopback port with httptest's certificate.
func New(cfg Config) *Server {
	if cfg.TokenID == "" {
		cfg.TokenID = DefaultTokenID
	}
	if cfg.Secret == "" {
		cfg.Secret = DefaultSecret
	}
	if cfg.UnauthorizedDelay == 0 {
		cfg.UnauthorizedDelay = DefaultUnauthorizedDelay
	}
	if cfg.TaskDelay == 0 {
		cfg.TaskDelay = DefaultTaskDelay
	}
	s := &Server{
		cfg:    cfg,
		done:   make(chan struct{}),
		guests: map[guestKey]*guest{},
		tasks:  map[string]*task{},
		calls:  map[string]int{},
		forms:  map[string]url.Values{},
		denied: map[string]string{},
	}
	s.srv = httptest.NewUnstartedServer(s.routes())
	// A client that rejects the certificate (a fingerprint test) makes the
	// server log a handshake error: noise, not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	return s
}

// Close stops the server. Tasks not yet finished never finish; hooks
// already running are waited for.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	for _, t := range s.tasks {
		if t.timer != nil && t.timer.Stop() {
			s.wg.Done()
		}
	}
	for _, t := range s.timers {
		if t.Stop() {
			s.wg.Done()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.srv.Close()
}

// URL returns the API's base URL, "https://127.0.0.1:port", as a user
// would give it to sleeper.
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server's certificate, for
// tests that look at raw answers.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// TokenID returns the token id the server accepts.
func (s *Server) TokenID() string { return s.cfg.TokenID }

// Secret returns the token secret the server accepts.
func (s *Server) Secret() string { return s.cfg.Secret }

// Certificate returns the server's certificate.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// CertificatePEM returns the server's certificate as PEM, for a CA file.
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Fingerprint returns the SHA-256 fingerprint of the server's certificate
// as PVE's UI shows it: upper-case hex pairs joined by colons.
func (s *Server) Fingerprint() string {
	sum := sha256.Sum256(s.srv.Certificate().Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// AddLXC adds a stopped LXC guest. addr is eth0's address while it runs.
// VMIDs are unique in a PVE cluster: adding one twice panics.
func (s *Server) AddLXC(node string, vmid int, name string, addr netip.Addr) {
	s.add(&guest{kind: "lxc", node: node, vmid: vmid, name: name, addr: addr})
}

// AddQEMU adds a stopped QEMU VM without an address or a guest agent.
func (s *Server) AddQEMU(node string, vmid int, name string) {
	s.add(&guest{kind: "qemu", node: node, vmid: vmid, name: name})
}

// VM describes a QEMU VM for AddVM.
type VM struct {
	Name string
	// Addr is the address the guest agent reports while the VM runs.
	Addr netip.Addr
	// NoAgent leaves the guest agent out: its calls always fail.
	NoAgent bool
	// AgentDelay is how long after a start the agent begins to answer (the
	// guest boots first).
	AgentDelay time.Duration
}

// AddVM adds a stopped QEMU VM.
func (s *Server) AddVM(node string, vmid int, vm VM) {
	s.add(&guest{kind: "qemu", node: node, vmid: vmid, name: vm.Name, addr: vm.Addr,
		agent: !vm.NoAgent, agentDelay: vm.AgentDelay})
}

func (s *Server) add(g *guest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.guests {
		if k.vmid == g.vmid {
			panic(fmt.Sprintf("pvefake: vmid %d added twice", g.vmid))
		}
	}
	s.guests[guestKey{g.node, g.vmid}] = g
}

// Remove deletes a guest, as destroying it in the UI would.
func (s *Server) Remove(node string, vmid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.guests, guestKey{node, vmid})
}

func (s *Server) guest(node string, vmid int) *guest {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guests[guestKey{node, vmid}]
	if g == nil {
		panic(fmt.Sprintf("pvefake: no guest %d on %s", vmid, node))
	}
	return g
}

// SetRunning starts or stops a guest out of band, as a click in the PVE UI
// would, hooks included. It returns the OnStart hook's error.
func (s *Server) SetRunning(node string, vmid int, running bool) error {
	return s.transition(s.guest(node, vmid), running)
}

// FailStart makes the guest's next start tasks fail with exitstatus (PVE's
// error text, e.g. "startup for container '101' failed"); "" clears it.
func (s *Server) FailStart(node string, vmid int, exitstatus string) {
	g := s.guest(node, vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.failStart = exitstatus
}

// HangShutdown makes the guest ignore clean shutdowns: a shutdown task then
// fails as lxc-stop does at its timeout (or, with forceStop, kills it and
// ends with a warning). The fake does not wait the timeout out: the task
// takes TaskDelay like any other.
func (s *Server) HangShutdown(node string, vmid int, hang bool) {
	g := s.guest(node, vmid)
	s.mu.Lock()
	defer s.mu.Unlock()
	g.hangShutdown = hang
}

// Status returns "running", "paused" (a VM suspended in memory) or
// "stopped", or "" for an unknown guest.
func (s *Server) Status(node string, vmid int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guests[guestKey{node, vmid}]
	switch {
	case g == nil:
		return ""
	case g.running && g.paused:
		return "paused"
	case g.running:
		return "running"
	default:
		return "stopped"
	}
}

// Calls returns how many calls an endpoint (Endpoint*) received.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// LastForm returns the parameters of the last accepted POST to an endpoint,
// whether it came form-encoded or as JSON.
func (s *Server) LastForm(endpoint string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forms[endpoint]
}

// transition moves a guest to running or stopped, running its hook first:
// the app is up by the time the guest reports running, and down by the
// time it reports stopped.
func (s *Server) transition(g *guest, running bool) error {
	g.power.Lock()
	defer g.power.Unlock()
	s.mu.Lock()
	cur, info := g.running, g.info()
	s.mu.Unlock()
	if cur == running {
		return nil
	}
	if running && s.cfg.OnStart != nil {
		if err := s.cfg.OnStart(info); err != nil {
			return err
		}
	}
	if !running && s.cfg.OnStop != nil {
		s.cfg.OnStop(info)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g.running, g.paused = running, false
	if running {
		g.startedAt = time.Now()
		if g.lock == "suspended" {
			g.lock = "" // a hibernated VM's start restores it
		}
	}
	return nil
}

// uptime is whole seconds, as PVE reports it.
func (g *guest) uptime(now time.Time) int64 {
	if !g.running {
		return 0
	}
	return int64(now.Sub(g.startedAt) / time.Second)
}
