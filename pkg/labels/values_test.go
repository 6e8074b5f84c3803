package labels_test

import (
	"errors"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// validCase is one label set Parse must accept: want edits defaults() into
// the expected Spec.
type validCase struct {
	name string
	in   map[string]string // keys without prefix; enable=true is added
	opt  *labels.Options   // nil: testOpt
	want func(*labels.Spec)
}

// errorCase is one label set Parse must reject with exactly one *Error.
type errorCase struct {
	name   string
	in     map[string]string // keys without prefix; enable=true is added
	key    string            // key of the single expected error, without prefix
	reason string            // substring of the reason, optional
}

// TestParseValidRouting covers the labels that decide where requests go.
func TestParseValidRouting(t *testing.T) {
	t.Parallel()
	runValid(t, []validCase{
		{"defaults", nil, nil, func(*labels.Spec) {}},
		{"default host strips docker's slash", nil, &labels.Options{Name: "/App", Domain: "Example.COM."}, func(s *labels.Spec) {
			s.IdleTimeout = 0
		}},
		{"no domain no host", nil, &labels.Options{Name: "app"}, func(s *labels.Spec) { s.Hosts = nil; s.IdleTimeout = 0 }},
		{"name that is no DNS label gives no default host", nil, &labels.Options{Name: "proj_web_1", Domain: "example.com"}, func(s *labels.Spec) {
			s.Hosts = nil
			s.IdleTimeout = 0
		}},
		{"enable 1", map[string]string{"enable": " 1 "}, nil, func(*labels.Spec) {}},
		{"hosts normalised", map[string]string{"hosts": " App.Example.COM. , *.example.com,localhost,*.localhost"}, nil, func(s *labels.Spec) {
			s.Hosts = []string{"app.example.com", "*.example.com", "localhost", "*.localhost"}
		}},
		{"hosts longest label and name", map[string]string{"hosts": strings.Repeat("a", 63) + "." + longName(253-64)}, nil, func(s *labels.Spec) {
			s.Hosts = []string{strings.Repeat("a", 63) + "." + longName(253-64)}
		}},
		{"hosts numeric label", map[string]string{"hosts": "123.example.com,1-2.io"}, nil, func(s *labels.Spec) {
			s.Hosts = []string{"123.example.com", "1-2.io"}
		}},
		{"port", map[string]string{"port": " 8080 "}, nil, func(s *labels.Spec) { s.Port = 8080 }},
		{"port max", map[string]string{"port": "65535"}, nil, func(s *labels.Spec) { s.Port = 65535 }},
		{"port 0 means auto", map[string]string{"port": "0"}, nil, func(*labels.Spec) {}},
		{"scheme any case", map[string]string{"scheme": "HTTPS"}, nil, func(s *labels.Spec) { s.Scheme = "https" }},
		{"listen", map[string]string{"listen": "8081, 8082"}, nil, func(s *labels.Spec) { s.Listen = []uint16{8081, 8082} }},
		{"streams", map[string]string{"streams": "5432:5432, 127.0.0.1:5353:53/udp,[::1]:6379:6379/TCP"}, nil, func(s *labels.Spec) {
			s.Streams = []labels.Stream{
				{Listen: 5432, Target: 5432, Protocol: labels.TCP},
				{IP: netip.MustParseAddr("127.0.0.1"), Listen: 5353, Target: 53, Protocol: labels.UDP},
				{IP: netip.MustParseAddr("::1"), Listen: 6379, Target: 6379, Protocol: labels.TCP},
			}
		}},
		{"streams same port other protocol or address", map[string]string{"streams": "53:53/tcp,53:53/udp,127.0.0.1:80:80,127.0.0.2:80:80,0.0.0.0:81:81,[::1]:81:81"}, nil, func(s *labels.Spec) {
			s.Streams = []labels.Stream{
				{Listen: 53, Target: 53, Protocol: labels.TCP},
				{Listen: 53, Target: 53, Protocol: labels.UDP},
				{IP: netip.MustParseAddr("127.0.0.1"), Listen: 80, Target: 80, Protocol: labels.TCP},
				{IP: netip.MustParseAddr("127.0.0.2"), Listen: 80, Target: 80, Protocol: labels.TCP},
				{IP: netip.MustParseAddr("0.0.0.0"), Listen: 81, Target: 81, Protocol: labels.TCP},
				{IP: netip.MustParseAddr("::1"), Listen: 81, Target: 81, Protocol: labels.TCP},
			}
		}},
		{"listen and udp stream share a port", map[string]string{"listen": "8081", "streams": "8081:53/udp"}, nil, func(s *labels.Spec) {
			s.Listen = []uint16{8081}
			s.Streams = []labels.Stream{{Listen: 8081, Target: 53, Protocol: labels.UDP}}
		}},
	})
}

// TestParseValidLifecycle covers sleeping, waking and the upstream.
func TestParseValidLifecycle(t *testing.T) {
	t.Parallel()
	runValid(t, []validCase{
		{"idle_timeout 0 never sleeps", map[string]string{"idle_timeout": "0"}, nil, func(s *labels.Spec) { s.IdleTimeout = 0 }},
		{"idle_timeout", map[string]string{"idle_timeout": "1h30m"}, nil, func(s *labels.Spec) { s.IdleTimeout = 90 * time.Minute }},
		{"stream_wake data", map[string]string{"stream_wake": "data"}, nil, func(s *labels.Spec) { s.StreamWake = labels.StreamWakeData }},
		{"stream_wake any case", map[string]string{"stream_wake": "Connect"}, nil, func(s *labels.Spec) { s.StreamWake = labels.StreamWakeConnect }},
		{"stop_method pause", map[string]string{"stop_method": "pause"}, nil, func(s *labels.Spec) { s.StopMethod = labels.StopMethodPause }},
		{"hibernate on a proxmox vm", map[string]string{"stop_method": "Hibernate", "proxmox.node": "pve1", "proxmox.vmid": "120", "proxmox.type": "qemu"}, nil, func(s *labels.Spec) {
			s.StopMethod = labels.StopMethodHibernate
			s.Proxmox = &labels.Proxmox{Node: "pve1", VMID: 120, Type: labels.GuestQEMU}
		}},
		{"pause on a proxmox guest of unknown type", map[string]string{"stop_method": "pause", "proxmox.node": "pve1", "proxmox.vmid": "120"}, nil, func(s *labels.Spec) {
			s.StopMethod = labels.StopMethodPause
			s.Proxmox = &labels.Proxmox{Node: "pve1", VMID: 120}
		}},
		{"stop_method any case", map[string]string{"stop_method": "KILL"}, nil, func(s *labels.Spec) { s.StopMethod = labels.StopMethodKill }},
		{"stop_signal SIGTERM", map[string]string{"stop_signal": "SIGTERM"}, nil, func(s *labels.Spec) { s.StopSignal = "SIGTERM" }},
		{"stop_signal short", map[string]string{"stop_signal": "term"}, nil, func(s *labels.Spec) { s.StopSignal = "SIGTERM" }},
		{"stop_signal mixed case", map[string]string{"stop_signal": "SigInt"}, nil, func(s *labels.Spec) { s.StopSignal = "SIGINT" }},
		{"stop_signal number", map[string]string{"stop_signal": "9"}, nil, func(s *labels.Spec) { s.StopSignal = "9" }},
		{"stop_signal number canonical", map[string]string{"stop_signal": "064"}, nil, func(s *labels.Spec) { s.StopSignal = "64" }},
		{"stop_timeout 0", map[string]string{"stop_timeout": "0"}, nil, func(s *labels.Spec) { s.StopTimeout = 0 }},
		{"stop_timeout", map[string]string{"stop_timeout": "30s"}, nil, func(s *labels.Spec) { s.StopTimeout = 30 * time.Second }},
		{"wake_timeout", map[string]string{"wake_timeout": "2m"}, nil, func(s *labels.Spec) { s.WakeTimeout = 2 * time.Minute }},
		{"depends_on", map[string]string{"depends_on": "db:healthy, shared/redis ,cache:HEALTHY,app.v2"}, nil, func(s *labels.Spec) {
			s.DependsOn = []labels.Dependency{{"db", true}, {"shared/redis", false}, {"cache", true}, {"app.v2", false}}
		}},
		{"wake_paths", map[string]string{"wake_paths": "/, /api/"}, nil, func(s *labels.Spec) { s.WakePaths = []string{"/", "/api/"} }},
		{"loading_page false", map[string]string{"loading_page": "false"}, nil, func(s *labels.Spec) { s.LoadingPage = false }},
		{"loading_page 0", map[string]string{"loading_page": "0"}, nil, func(s *labels.Spec) { s.LoadingPage = false }},
		{"health_exec true", map[string]string{"health_exec": "true"}, nil, func(s *labels.Spec) { s.HealthExec = true }},
		{"health_exec false", map[string]string{"health_exec": "false"}, nil, func(s *labels.Spec) { s.HealthExec = false }},
		{"ready_path with query", map[string]string{"ready_path": "/healthz?full=1"}, nil, func(s *labels.Spec) { s.ReadyPath = "/healthz?full=1" }},
		{"network", map[string]string{"network": "proxy_net"}, nil, func(s *labels.Spec) { s.Network = "proxy_net" }},
		{"upstream", map[string]string{"upstream": "http://10.0.0.5:8080"}, nil, func(s *labels.Spec) {
			s.Upstream = &url.URL{Scheme: "http", Host: "10.0.0.5:8080"}
		}},
		{"upstream sets the scheme", map[string]string{"upstream": "HTTPS://app.internal/"}, nil, func(s *labels.Spec) {
			s.Upstream = &url.URL{Scheme: "https", Host: "app.internal"}
			s.Scheme = "https"
		}},
		{"upstream agrees with scheme and port", map[string]string{"upstream": "https://[::1]", "scheme": "https", "port": "443"}, nil, func(s *labels.Spec) {
			s.Upstream = &url.URL{Scheme: "https", Host: "[::1]"}
			s.Scheme = "https"
			s.Port = 443
		}},
		{"proxmox", map[string]string{"proxmox.node": "pve-1.lan", "proxmox.vmid": "101", "stop_method": "kill"}, nil, func(s *labels.Spec) {
			s.Proxmox = &labels.Proxmox{Node: "pve-1.lan", VMID: 101}
			s.StopMethod = labels.StopMethodKill
		}},
		{"proxmox vmid 1", map[string]string{"proxmox.node": "pve", "proxmox.vmid": "1"}, nil, func(s *labels.Spec) {
			s.Proxmox = &labels.Proxmox{Node: "pve", VMID: 1}
		}},
		{"foreign labels ignored", map[string]string{}, nil, func(*labels.Spec) {}},
	})
}

// TestParseErrorsHosts covers enable, unknown keys and hosts.
func TestParseErrorsHosts(t *testing.T) {
	t.Parallel()
	runErrors(t, []errorCase{
		{"enable not a bool", map[string]string{"enable": "yes"}, "enable", "not a boolean"},
		{"unknown key typo", map[string]string{"idle-timeout": "5m"}, "idle-timeout", "did you mean sleeper.idle_timeout?"},
		{"unknown key wrong case", map[string]string{"Port": "80"}, "Port", "did you mean sleeper.port?"},
		{"unknown key", map[string]string{"colour": "blue"}, "colour", "known keys: enable, hosts"},
		{"unknown empty key", map[string]string{"": "x"}, "", "unknown label"},
		{"empty value", map[string]string{"port": "  "}, "port", "empty value"},

		{"hosts empty item", map[string]string{"hosts": "a.com,,b.com"}, "hosts", "empty item"},
		{"hosts trailing comma", map[string]string{"hosts": "a.com,"}, "hosts", "empty item"},
		{"hosts duplicate", map[string]string{"hosts": "a.com,A.com."}, "hosts", "twice"},
		{"hosts star alone", map[string]string{"hosts": "*"}, "hosts", "wildcard"},
		{"hosts star dot", map[string]string{"hosts": "*."}, "hosts", "wildcard"},
		{"hosts double wildcard", map[string]string{"hosts": "*.*.example.com"}, "hosts", "wildcard"},
		{"hosts inner wildcard", map[string]string{"hosts": "a.*.com"}, "hosts", "wildcard"},
		{"hosts star without dot", map[string]string{"hosts": "*example.com"}, "hosts", "wildcard"},
		{"hosts port", map[string]string{"hosts": "example.com:8080"}, "hosts", "port"},
		{"hosts url", map[string]string{"hosts": "http://example.com"}, "hosts", "scheme"},
		{"hosts path", map[string]string{"hosts": "example.com/app"}, "hosts", "path"},
		{"hosts ipv4", map[string]string{"hosts": "127.0.0.1"}, "hosts", "routes by host name"},
		{"hosts ipv6", map[string]string{"hosts": "::1"}, "hosts", "IP literals"},
		{"hosts ipv6 brackets", map[string]string{"hosts": "[::1]"}, "hosts", "IP literals"},
		{"hosts leading dash", map[string]string{"hosts": "-a.com"}, "hosts", "start or end"},
		{"hosts trailing dash", map[string]string{"hosts": "a-.com"}, "hosts", "start or end"},
		{"hosts underscore", map[string]string{"hosts": "a_b.com"}, "hosts", "only letters"},
		{"hosts idn", map[string]string{"hosts": "bücher.de"}, "hosts", "punycode"},
		{"hosts kelvin sign", map[string]string{"hosts": "\u212Aelvin.com"}, "hosts", "only letters"},
		{"hosts empty label", map[string]string{"hosts": "a..b"}, "hosts", "empty label"},
		{"hosts two trailing dots", map[string]string{"hosts": "a.com.."}, "hosts", "empty label"},
		{"hosts label too long", map[string]string{"hosts": strings.Repeat("a", 64) + ".com"}, "hosts", "63"},
		{"hosts name too long", map[string]string{"hosts": longName(254)}, "hosts", "253"},
		{"hosts wildcard too long", map[string]string{"hosts": "*." + longName(253)}, "hosts", "253"},
	})
}

// TestParseErrorsPorts covers port, scheme, listen and streams.
func TestParseErrorsPorts(t *testing.T) {
	t.Parallel()
	runErrors(t, []errorCase{
		{"port word", map[string]string{"port": "abc"}, "port", "1-65535"},
		{"port too big", map[string]string{"port": "65536"}, "port", "1-65535"},
		{"port negative", map[string]string{"port": "-1"}, "port", ""},
		{"port plus", map[string]string{"port": "+80"}, "port", ""},
		{"port float", map[string]string{"port": "80.0"}, "port", ""},

		{"scheme", map[string]string{"scheme": "ftp"}, "scheme", "http or https"},

		{"listen duplicate", map[string]string{"listen": "80,080"}, "listen", "twice"},
		{"listen zero", map[string]string{"listen": "0"}, "listen", "1-65535"},
		{"listen word", map[string]string{"listen": "80,abc"}, "listen", `"abc"`},
		{"listen too big", map[string]string{"listen": "70000"}, "listen", ""},
		{"listen empty item", map[string]string{"listen": "80,"}, "listen", "empty item"},

		{"streams single port", map[string]string{"streams": "5432"}, "streams", "LISTEN:TARGET"},
		{"streams bad listen", map[string]string{"streams": "a:5432"}, "streams", "listen port"},
		{"streams bad target", map[string]string{"streams": "5432:0"}, "streams", "target port"},
		{"streams zero listen", map[string]string{"streams": "0:1"}, "streams", "listen port"},
		{"streams sctp", map[string]string{"streams": "5432:5432/sctp"}, "streams", "tcp or udp"},
		{"streams empty protocol", map[string]string{"streams": "5432:5432/"}, "streams", "tcp or udp"},
		{"streams range", map[string]string{"streams": "8000-8010:8000-8010"}, "streams", "ranges"},
		{"streams no listen", map[string]string{"streams": "127.0.0.1::5432"}, "streams", "listen port is missing"},
		{"streams bare ipv6", map[string]string{"streams": "::1:5432:5432"}, "streams", "brackets"},
		{"streams ipv4 in brackets", map[string]string{"streams": "[127.0.0.1]:1:1"}, "streams", "IPv6"},
		{"streams missing colon after bracket", map[string]string{"streams": "[::1]5432:5432"}, "streams", ""},
		{"streams ipv6 zone", map[string]string{"streams": "[fe80::1%eth0]:1:1"}, "streams", "zone"},
		{"streams host name", map[string]string{"streams": "localhost:1:1"}, "streams", "IPv4"},
		{"streams duplicate", map[string]string{"streams": "5432:5432,5432:5433/TCP"}, "streams", "both listen"},
		{"streams wildcard conflict", map[string]string{"streams": "127.0.0.1:80:80,80:81"}, "streams", "both listen"},
		{"streams dual-stack conflict", map[string]string{"streams": "[::]:80:80,127.0.0.1:80:80"}, "streams", "both listen"},
		{"streams ipv4 wildcard conflict", map[string]string{"streams": "0.0.0.0:80:80,127.0.0.1:80:81"}, "streams", "both listen"},
		{"streams same address", map[string]string{"streams": "[::1]:53:53/udp,[::1]:53:54/udp"}, "streams", "both listen"},
		{"streams clash with listen", map[string]string{"listen": "8081", "streams": "8081:80"}, "streams", "also in sleeper.listen"},
	})
}

// TestParseErrorsLifecycle covers timeouts, stop method and signal.
func TestParseErrorsLifecycle(t *testing.T) {
	t.Parallel()
	runErrors(t, []errorCase{
		{"idle_timeout word", map[string]string{"idle_timeout": "abc"}, "idle_timeout", "not a Go duration (e.g. 90s, 15m, 1h30m)"},
		{"idle_timeout bare number", map[string]string{"idle_timeout": "90"}, "idle_timeout", "add a unit, e.g. 90s"},
		{"idle_timeout negative", map[string]string{"idle_timeout": "-1s"}, "idle_timeout", "negative"},

		{"stop_method", map[string]string{"stop_method": "sleep"}, "stop_method", "stop, pause, kill or hibernate"},
		{"stream_wake", map[string]string{"stream_wake": "byte"}, "stream_wake", "must be connect or data"},
		{"stop_method pause on proxmox lxc", map[string]string{"stop_method": "pause", "proxmox.node": "pve", "proxmox.vmid": "101", "proxmox.type": "lxc"}, "stop_method", "pause is not supported for Proxmox LXC"},
		{"stop_method hibernate on proxmox lxc", map[string]string{"stop_method": "hibernate", "proxmox.node": "pve", "proxmox.vmid": "101", "proxmox.type": "LXC"}, "stop_method", "hibernate is not supported for Proxmox LXC"},
		{"stop_method hibernate on docker", map[string]string{"stop_method": "hibernate"}, "stop_method", "only for Proxmox virtual machines"},
		{"proxmox.type", map[string]string{"proxmox.type": "vm", "proxmox.node": "pve", "proxmox.vmid": "101"}, "proxmox.type", "lxc or qemu"},
		{"proxmox.type alone", map[string]string{"proxmox.type": "qemu"}, "proxmox.type", "needs sleeper.proxmox.node"},

		{"stop_signal unknown name", map[string]string{"stop_signal": "SIGFOO"}, "stop_signal", "not a signal"},
		{"stop_signal SIG alone", map[string]string{"stop_signal": "SIG"}, "stop_signal", ""},
		{"stop_signal zero", map[string]string{"stop_signal": "0"}, "stop_signal", ""},
		{"stop_signal 65", map[string]string{"stop_signal": "65"}, "stop_signal", ""},
		{"stop_signal negative", map[string]string{"stop_signal": "-9"}, "stop_signal", ""},
		{"stop_signal on proxmox", map[string]string{"stop_signal": "TERM", "proxmox.node": "pve", "proxmox.vmid": "101"}, "stop_signal", "Proxmox"},

		{"stop_timeout negative", map[string]string{"stop_timeout": "-5s"}, "stop_timeout", "negative"},
		{"stop_timeout bare number", map[string]string{"stop_timeout": "10"}, "stop_timeout", "unit"},
		{"wake_timeout zero", map[string]string{"wake_timeout": "0"}, "wake_timeout", "greater than 0"},
		{"wake_timeout 0s", map[string]string{"wake_timeout": "0s"}, "wake_timeout", "greater than 0"},
		{"wake_timeout negative", map[string]string{"wake_timeout": "-1m"}, "wake_timeout", "negative"},
	})
}

// TestParseErrorsOther covers the remaining labels and the Proxmox pair.
func TestParseErrorsOther(t *testing.T) {
	t.Parallel()
	runErrors(t, []errorCase{
		{"depends_on condition", map[string]string{"depends_on": "db:ready"}, "depends_on", "only :healthy"},
		{"depends_on empty condition", map[string]string{"depends_on": "db:"}, "depends_on", "condition"},
		{"depends_on no name", map[string]string{"depends_on": ":healthy"}, "depends_on", "container name"},
		{"depends_on bad first char", map[string]string{"depends_on": "_db"}, "depends_on", "container name"},
		{"depends_on two slashes", map[string]string{"depends_on": "a/b/c"}, "depends_on", "container name"},
		{"depends_on empty service", map[string]string{"depends_on": "proj/"}, "depends_on", "container name"},
		{"depends_on empty project", map[string]string{"depends_on": "/svc"}, "depends_on", "container name"},
		{"depends_on self", map[string]string{"depends_on": "db,app:healthy"}, "depends_on", "itself"},
		{"depends_on duplicate", map[string]string{"depends_on": "db,db:healthy"}, "depends_on", "twice"},
		{"depends_on empty item", map[string]string{"depends_on": "db,,x"}, "depends_on", "empty item"},

		{"wake_paths relative", map[string]string{"wake_paths": "api"}, "wake_paths", "start with /"},
		{"wake_paths space", map[string]string{"wake_paths": "/a b"}, "wake_paths", "whitespace"},
		{"wake_paths query", map[string]string{"wake_paths": "/a?x=1"}, "wake_paths", "?"},
		{"wake_paths fragment", map[string]string{"wake_paths": "/a#b"}, "wake_paths", "#"},
		{"wake_paths duplicate", map[string]string{"wake_paths": "/a,/a"}, "wake_paths", "twice"},

		{"loading_page", map[string]string{"loading_page": "maybe"}, "loading_page", "boolean"},
		{"health_exec", map[string]string{"health_exec": "maybe"}, "health_exec", "boolean"},
		{"ready_path relative", map[string]string{"ready_path": "healthz"}, "ready_path", "start with /"},
		{"ready_path space", map[string]string{"ready_path": "/a b"}, "ready_path", "whitespace"},
		{"ready_path fragment", map[string]string{"ready_path": "/a#b"}, "ready_path", "fragment"},
		{"ready_path bad escape", map[string]string{"ready_path": "/a%zz"}, "ready_path", "request path"},
		{"network space", map[string]string{"network": "my net"}, "network", "whitespace"},
		{"network on proxmox", map[string]string{"network": "n", "proxmox.node": "pve", "proxmox.vmid": "101"}, "network", "Proxmox"},

		{"upstream scheme", map[string]string{"upstream": "ftp://x"}, "upstream", "http or https"},
		{"upstream no scheme", map[string]string{"upstream": "10.0.0.5:8080"}, "upstream", "scheme://host"},
		{"upstream no host", map[string]string{"upstream": "http://"}, "upstream", "host"},
		{"upstream port only", map[string]string{"upstream": "http://:8080"}, "upstream", "host"},
		{"upstream opaque", map[string]string{"upstream": "http:x"}, "upstream", "scheme://host"},
		{"upstream user info", map[string]string{"upstream": "http://user:pw@x"}, "upstream", "user info"},
		{"upstream path", map[string]string{"upstream": "http://x/api"}, "upstream", "own path"},
		{"upstream query", map[string]string{"upstream": "http://x?q=1"}, "upstream", "own path"},
		{"upstream empty query", map[string]string{"upstream": "http://x/?"}, "upstream", "own path"},
		{"upstream fragment", map[string]string{"upstream": "http://x/#"}, "upstream", "own path"},
		{"upstream port 0", map[string]string{"upstream": "http://x:0"}, "upstream", "1-65535"},
		{"upstream port too big", map[string]string{"upstream": "http://x:99999"}, "upstream", "1-65535"},
		{"upstream empty port", map[string]string{"upstream": "http://x:"}, "upstream", "empty port"},
		{"upstream contradicts scheme", map[string]string{"upstream": "https://x", "scheme": "http"}, "scheme", "contradicts sleeper.upstream"},
		{"upstream contradicts port", map[string]string{"upstream": "http://x", "port": "8080"}, "port", "port 80"},

		{"proxmox node alone", map[string]string{"proxmox.node": "pve"}, "proxmox.node", "needs sleeper.proxmox.vmid"},
		{"proxmox vmid alone", map[string]string{"proxmox.vmid": "101"}, "proxmox.vmid", "needs sleeper.proxmox.node"},
		{"proxmox vmid zero", map[string]string{"proxmox.node": "pve", "proxmox.vmid": "0"}, "proxmox.vmid", "VMID"},
		{"proxmox vmid word", map[string]string{"proxmox.node": "pve", "proxmox.vmid": "abc"}, "proxmox.vmid", "VMID"},
		{"proxmox vmid plus", map[string]string{"proxmox.node": "pve", "proxmox.vmid": "+101"}, "proxmox.vmid", "VMID"},
		{"proxmox vmid too big", map[string]string{"proxmox.node": "pve", "proxmox.vmid": "1000000000"}, "proxmox.vmid", "VMID"},
		{"proxmox node space", map[string]string{"proxmox.node": "pve 1", "proxmox.vmid": "101"}, "proxmox.node", "node name"},
		{"proxmox node underscore", map[string]string{"proxmox.node": "pve_1", "proxmox.vmid": "101"}, "proxmox.node", "node name"},
	})
}

func runValid(t *testing.T, tests []validCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opt := testOpt
			if tt.opt != nil {
				opt = *tt.opt
			}
			in := enabled(tt.in)
			if tt.name == "foreign labels ignored" {
				in["com.docker.compose.project"] = "demo"
				in["sleeper"] = "x"
				in["sleeperx.port"] = "x"
				in["traefik.http.routers.a.rule"] = "Host(`a`)"
			}
			want := defaults()
			tt.want(&want)
			got, err := labels.Parse(in, opt)
			if err != nil {
				t.Fatalf("Parse(%v) error: %v", in, err)
			}
			// HostSources repeats Hosts with their origin (foreign_test.go
			// checks the origins); here it only has to agree with Hosts.
			checkHostSources(t, got)
			got.HostSources, got.HostNotes = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%v)\n got %+v\nwant %+v", in, got, want)
			}
		})
	}
}

func runErrors(t *testing.T, tests []errorCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := enabled(tt.in)
			spec, err := labels.Parse(in, testOpt)
			if err == nil {
				t.Fatalf("Parse(%v) = %+v, want an error on %q", in, spec, tt.key)
			}
			if !reflect.DeepEqual(spec, labels.Spec{}) {
				t.Errorf("Parse returned a non-zero Spec with an error: %+v", spec)
			}
			if errors.Is(err, labels.ErrNotEnabled) {
				t.Fatalf("error %v is ErrNotEnabled", err)
			}
			var le *labels.Error
			if !errors.As(err, &le) {
				t.Fatalf("error %v has no *labels.Error", err)
			}
			if all := labels.Errors(err); len(all) != 1 {
				t.Errorf("got %d errors, want 1: %v", len(all), err)
			}
			wantKey := "sleeper." + tt.key
			if le.Key != wantKey || le.Value != in[wantKey] {
				t.Errorf("error on %s=%q, want %s=%q (%v)", le.Key, le.Value, wantKey, in[wantKey], err)
			}
			if !strings.Contains(le.Reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", le.Reason, tt.reason)
			}
			if le.Reason == "" || le.Reason != strings.TrimSpace(le.Reason) || strings.HasSuffix(le.Reason, ".") {
				t.Errorf("reason %q: want a trimmed phrase without trailing period", le.Reason)
			}
		})
	}
}

// longName builds a valid DNS name of exactly n characters.
func longName(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.Repeat("b", min(63, n-b.Len())))
	}
	return b.String()
}
