package labels

import (
	"slices"
	"time"
)

// DefaultPrefix is the label prefix used when Options.Prefix is empty; it is
// the default of --label-prefix. Labels are spelled "<prefix>.<key>".
const DefaultPrefix = "sleeper"

// Defaults Parse applies when a label is absent. The idle timeout has no
// constant here because its default is a flag (Options.DefaultIdleTimeout).
const (
	DefaultStopTimeout = 10 * time.Second
	DefaultWakeTimeout = 60 * time.Second
)

// Label keys, without the prefix. This block is the only place a label name is
// spelled: parse_test.go fails on a "sleeper.…" string literal anywhere else in
// the package, so the name, its doc and its parser cannot drift apart.
const (
	// KeyEnable opts a container in. Type: bool (strconv.ParseBool: true,
	// false, 1, 0, …). Default: none; without enable=true sleeper never
	// touches the container. Example: sleeper.enable=true
	KeyEnable = "enable"

	// KeyHosts lists the Host headers routed to the container on --addr.
	// Type: comma list of DNS names, lower-cased, a trailing dot dropped;
	// a wildcard "*.example.com" is allowed. No ports, no schemes, no IP
	// literals (sleeper routes by name). Default:
	// "<name>.<--domain>" when --domain is set, else none.
	// Example: sleeper.hosts=app.example.com,*.app.example.com
	KeyHosts = "hosts"

	// KeyPort is the container port the proxy and probes target. Type:
	// integer 1..65535; 0 means the same as absent. Default: the only exposed
	// port, else 80 (decided by the runtime, Spec.Port stays 0).
	// Example: sleeper.port=3000
	KeyPort = "port"

	// KeyScheme is the upstream scheme. Type: http or https (any case).
	// Default: http, or the scheme of the upstream label when that is set.
	// Example: sleeper.scheme=https
	KeyScheme = "scheme"

	// KeyListen adds HTTP listeners on sleeper that send every request to this
	// container whatever the Host. Type: comma list of ports 1..65535, no
	// duplicates. Default: none. Example: sleeper.listen=8081,8082
	KeyListen = "listen"

	// KeyStreams adds L4 listeners on sleeper; the first bytes wake the
	// container. Type: comma list in Docker port syntax
	// [IP:]LISTEN:TARGET[/tcp|/udp], IPv6 addresses in brackets, protocol
	// tcp by default; no port ranges. Default: none.
	// Example: sleeper.streams=5432:5432,[::1]:5353:53/udp
	KeyStreams = "streams"

	// KeyStreamWake says what wakes the container through a TCP stream:
	// connect (a connection, for protocols where the server speaks first,
	// such as MySQL, SMTP or SSH) or data (the client's first byte: a port
	// scanner or TCP monitor that connects and sends nothing neither wakes
	// the container nor counts as activity). Type: connect or data (any
	// case). Default: connect. Example: sleeper.stream_wake=data
	KeyStreamWake = "stream_wake"

	// KeyIdleTimeout is how long without activity before sleeping. Type: Go
	// duration ≥ 0; 0 means never sleep; a bare number other than 0 is
	// rejected (is 90 seconds or minutes?). Default: --default-idle-timeout.
	// Example: sleeper.idle_timeout=1h30m
	KeyIdleTimeout = "idle_timeout"

	// KeyStopMethod is how the container is put to sleep. Type: stop, pause,
	// kill or hibernate (any case); hibernate is for Proxmox VMs only, and
	// pause and hibernate are rejected for Proxmox LXC. Default: stop.
	// Example: sleeper.stop_method=pause
	KeyStopMethod = "stop_method"

	// KeyStopSignal is the signal for stop and kill. Type: a POSIX signal
	// name with or without SIG (any case), canonicalised to "SIGTERM" form,
	// or a number 1..64. Not allowed for Proxmox LXC (PVE sends none).
	// Default: the image's StopSignal, else SIGTERM (Spec.StopSignal "").
	// Example: sleeper.stop_signal=SIGINT
	KeyStopSignal = "stop_signal"

	// KeyStopTimeout is the grace before SIGKILL on stop. Type: Go duration
	// ≥ 0. Default: DefaultStopTimeout (10s). Example: sleeper.stop_timeout=30s
	KeyStopTimeout = "stop_timeout"

	// KeyWakeTimeout is the longest a wake may take; past it waiting clients
	// get an error. Type: Go duration > 0. Default: DefaultWakeTimeout (60s).
	// Example: sleeper.wake_timeout=2m
	KeyWakeTimeout = "wake_timeout"

	// KeyDependsOn names containers woken first. Type: comma list of
	// name[:healthy], where name is a container or compose service name or
	// project/service ([a-zA-Z0-9][a-zA-Z0-9_.-]* each) and ":healthy" waits
	// for its health check. The container itself is rejected (a cycle);
	// longer cycles span containers and are found by the caller. Default:
	// none. Example: sleeper.depends_on=db:healthy,shared/redis
	KeyDependsOn = "depends_on"

	// KeyWakePaths limits which request paths may wake the container; others
	// get 503 while it sleeps. Type: comma list of path prefixes starting
	// with '/', without whitespace, '?' or '#'. Default: every path.
	// Example: sleeper.wake_paths=/,/api/
	KeyWakePaths = "wake_paths"

	// KeyLoadingPage chooses between the loading page for browsers (true)
	// and holding every request (false). Type: bool. Default: true.
	// Example: sleeper.loading_page=false
	KeyLoadingPage = "loading_page"

	// KeyReadyPath is the HTTP readiness probe path (2xx/3xx means ready).
	// Type: path starting with '/', query allowed, no whitespace or '#'.
	// Default: none (any HTTP answer counts). Example: sleeper.ready_path=/healthz
	KeyReadyPath = "ready_path"

	// KeyNetwork picks the Docker network whose address is dialled. Type:
	// network name, no whitespace. Not allowed for Proxmox LXC. Default: the
	// first network shared with sleeper. Example: sleeper.network=proxy
	KeyNetwork = "network"

	// KeyUpstream overrides address discovery. Type: URL
	// http(s)://host[:port] with an optional trailing '/', nothing more.
	// Default: derived from the container's addresses.
	// Example: sleeper.upstream=http://10.0.0.5:8080
	KeyUpstream = "upstream"

	// KeyHealthExec lets sleeper run the container's own health test through
	// the engine's exec API while it wakes, at a fast cadence, when the test
	// names no URL sleeper could fetch itself (pg_isready, a script). It needs
	// exec permission on the engine (a socket proxy must allow EXEC). Type:
	// bool. Default: false (wait for the engine's health_status event, whose
	// first probe comes one interval after the start).
	// Example: sleeper.health_exec=true
	KeyHealthExec = "health_exec"

	// KeyProxmoxNode marks a stub container configuring an LXC on this PVE
	// node; it needs KeyProxmoxVMID. Type: node name of [a-zA-Z0-9.-].
	// Default: none (not a stub). Example: sleeper.proxmox.node=pve1
	KeyProxmoxNode = "proxmox.node"

	// KeyProxmoxVMID is the LXC's id; it needs KeyProxmoxNode. Type: integer
	// 1..999999999 (PVE itself allocates 100 and up). Default: none.
	// Example: sleeper.proxmox.vmid=101
	KeyProxmoxVMID = "proxmox.vmid"

	// KeyProxmoxType says what kind of guest the stub configures, to be
	// explicit: a guest of another type is a config error. Type: lxc or
	// qemu (any case); needs KeyProxmoxNode. Default: found from the
	// cluster's resource list. Example: sleeper.proxmox.type=qemu
	KeyProxmoxType = "proxmox.type"

	// KeyReplicas is how many replicas a Docker Swarm service runs while
	// awake (asleep it runs 0). Read from the service's own labels
	// (deploy.labels in a stack file); meaningless on a container. Type:
	// integer 1..1000. Default: the count the service had when last seen
	// awake, else 1. Example: sleeper.replicas=3
	KeyReplicas = "replicas"
	// KeyIgnoreAgents lists User-Agent substrings (case-insensitive) whose
	// requests neither wake the container nor count as activity: uptime
	// monitors and bots. It adds to --ignore-agents. Type: comma list of
	// substrings without control characters. Default: none (only the flag's
	// list). Example: sleeper.ignore_agents=my-checker,curl/
	KeyIgnoreAgents = "ignore_agents"

	// KeyIgnoreCIDRs lists client networks whose requests neither wake nor
	// count as activity (the client is the peer, or the address a
	// --trusted-proxies peer forwards). Type: comma list of CIDRs or bare
	// IPs. Default: none. Example: sleeper.ignore_cidrs=10.0.0.0/8,192.0.2.7
	KeyIgnoreCIDRs = "ignore_cidrs"

	// KeyIgnorePaths lists path prefixes, matched like KeyWakePaths, whose
	// requests neither wake nor count as activity. Type: comma list of path
	// prefixes starting with '/', without whitespace, '?' or '#'.
	// Default: none. Example: sleeper.ignore_paths=/healthz,/metrics
	KeyIgnorePaths = "ignore_paths"
	// KeyAwakeDuring is a keep-warm schedule: inside a window the container
	// is woken at the window's start and never put to sleep; outside, the
	// idle timeout applies. Type: comma list of windows "[DAYS] HH:MM-HH:MM",
	// DAYS a day or a day range (Mon-Fri, Fri-Mon), none meaning every day;
	// 24:00 allowed as an end; an end before the start runs past midnight.
	// Times are in --timezone. Default: none.
	// Example: sleeper.awake_during=Mon-Fri 07:30-19:00, Sat 10:00-14:00
	KeyAwakeDuring = "awake_during"

	// KeyGroup names a group: a request to any member wakes every member,
	// and the members sleep together once every one has been idle for its
	// own timeout. Type: name of [a-zA-Z0-9_.-], starting alphanumeric.
	// Default: none. Example: sleeper.group=media
	KeyGroup = "group"

	// KeyBusyCPU postpones a sleep while the container's CPU use over the
	// last interval is above this percentage (of one CPU; 200% is two full
	// CPUs). Type: number > 0 with an optional '%'. Default: none (no
	// check). Example: sleeper.busy_cpu=10%
	KeyBusyCPU = "busy_cpu"
)

// knownKeys is every Key* constant once, in the order of README's label
// table. It is an array so that no caller can change it.
var knownKeys = [...]string{
	KeyEnable,
	KeyHosts,
	KeyPort,
	KeyScheme,
	KeyListen,
	KeyStreams,
	KeyStreamWake,
	KeyIdleTimeout,
	KeyStopMethod,
	KeyStopSignal,
	KeyStopTimeout,
	KeyWakeTimeout,
	KeyDependsOn,
	KeyWakePaths,
	KeyLoadingPage,
	KeyReadyPath,
	KeyNetwork,
	KeyUpstream,
	KeyHealthExec,
	KeyProxmoxNode,
	KeyProxmoxVMID,
	KeyProxmoxType,
	KeyReplicas,
	KeyIgnoreAgents,
	KeyIgnoreCIDRs,
	KeyIgnorePaths,
	KeyAwakeDuring,
	KeyGroup,
	KeyBusyCPU,
}

// Keys returns every label key sleeper reads, without the prefix, in the order
// of README's label table. The slice is a copy the caller may keep.
func Keys() []string {
	return slices.Clone(knownKeys[:])
}
