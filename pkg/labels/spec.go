// Package labels turns a container's labels into a typed, validated Spec.
//
// Policy: the package is pure. A map of labels goes in, a Spec or an error comes
// out; there is no Docker, no I/O and no logging here. Every label sleeper reads
// is declared once, in keys.go, with its type, default and an example. Any other
// key under the prefix is an error, so a typo never silently does nothing.
package labels

import (
	"net/netip"
	"net/url"
	"time"
)

// StopMethod is how a container is put to sleep.
type StopMethod string

// Stop methods accepted by the stop_method label.
const (
	StopMethodStop  StopMethod = "stop"
	StopMethodPause StopMethod = "pause"
	StopMethodKill  StopMethod = "kill"
	// StopMethodHibernate saves a Proxmox VM's memory to disk and stops it
	// (PVE's suspend with todisk=1); the next start restores it. Valid only
	// for stub containers of Proxmox VMs.
	StopMethodHibernate StopMethod = "hibernate"
)

// Proxmox guest types, as /cluster/resources names them.
const (
	GuestLXC  = "lxc"
	GuestQEMU = "qemu"
)

// StreamWake is what wakes a container through a TCP stream.
type StreamWake string

// Values of the stream_wake label.
const (
	StreamWakeConnect StreamWake = "connect" // a connection wakes
	StreamWakeData    StreamWake = "data"    // only the client's first byte wakes
)

// Protocol is the transport of an L4 stream.
type Protocol string

// Stream protocols.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Stream is one `[IP:]LISTEN:TARGET/proto` entry of the streams label: sleeper
// listens on IP:LISTEN and forwards to the container's TARGET port.
type Stream struct {
	IP       netip.Addr // zero when the spec names no IP (listen on every address)
	Listen   uint16
	Target   uint16
	Protocol Protocol
}

// Dependency is one entry of depends_on: a container (or compose service) to
// wake first, optionally waiting for its Docker health check.
type Dependency struct {
	// Engine names the engine the dependency runs on ("engine:name");
	// "" means the dependent's own engine.
	Engine  string
	Name    string // "name", "service" (same compose project) or "project/service"
	Healthy bool   // ":healthy" suffix: wait for the health check to pass
}

// Proxmox marks a stub container that configures a Proxmox guest.
type Proxmox struct {
	Node string
	VMID int
	// Type is GuestLXC or GuestQEMU when sleeper.proxmox.type says so, ""
	// when the provider is to find it from the cluster.
	Type string
}

// Spec is the parsed, validated idle-watch configuration of one container.
// Defaults are already applied: a zero field means the label's documented
// default, except where noted.
type Spec struct {
	Hosts []string // lower-case host names, "*.example.com" allowed
	// HostSources is Hosts again, in the same order, each with where it
	// was found; HostNotes explains what a foreign label (Traefik, Caddy)
	// held that could not be used, for a debug log.
	HostSources []HostSource
	HostNotes   []string
	Port        uint16   // 0: not set; the runtime picks the only exposed port, else 80
	Scheme      string   // "http" or "https"; the upstream's scheme when Upstream is set
	Listen      []uint16 // extra HTTP listener ports on sleeper
	Streams     []Stream
	StreamWake  StreamWake    // what wakes the container through a TCP stream
	IdleTimeout time.Duration // 0 means never sleep
	StopMethod  StopMethod
	StopSignal  string        // canonical "SIGTERM" form; "" means the image's, else SIGTERM
	StopTimeout time.Duration // grace before SIGKILL on stop
	WakeTimeout time.Duration
	DependsOn   []Dependency
	WakePaths   []string // path prefixes allowed to wake; empty means every path
	LoadingPage bool
	ReadyPath   string   // "" means any HTTP answer counts as ready
	Network     string   // "" means the first shared network
	Upstream    *url.URL // nil means derived from the container's addresses
	HealthExec  bool     // run a health test that names no URL through the engine's exec API
	Proxmox     *Proxmox // non-nil for a stub container that configures a Proxmox guest
	AwakeDuring Schedule // keep-warm windows; nil means none
	Group       string   // "" means no group
	BusyCPU     float64  // percent of one CPU; 0 means no busy check
	// Replicas is how many replicas a Swarm service runs awake; 0 means
	// the label is absent (the provider decides).
	Replicas uint64
	// Ignore* select requests that neither wake the container nor count
	// as activity (ignore.go); empty means none beyond --ignore-agents.
	IgnoreAgents []string       // lower-case User-Agent substrings
	IgnoreCIDRs  []netip.Prefix // client networks, masked
	IgnorePaths  []string       // path prefixes, like WakePaths
}

// Options carries what parsing needs besides the labels themselves.
type Options struct {
	Prefix string // label prefix without the dot, "sleeper" by default
	Name   string // container name, for the default host
	Domain string // --domain; with it the default host is <Name>.<Domain>
	// HostsFrom names the foreign labels read for hosts when the hosts
	// label is absent (--hosts-from): SourceTraefik, SourceCaddy. Hosts
	// found there replace the --domain default. Empty reads none.
	HostsFrom          []string
	DefaultIdleTimeout time.Duration // --default-idle-timeout
}
