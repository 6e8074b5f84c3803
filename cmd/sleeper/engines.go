package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// engineHost is one --docker-host entry.
type engineHost struct {
	// Name is the engine's name in container identities (engine/name),
	// depends_on (engine:name), logs and the API.
	Name string
	// Host is the engine's address (unix://, tcp://, ssh://…); "" means
	// DOCKER_HOST, else the local socket.
	Host string
	// Address is where the engine's published ports are dialled; invalid
	// means the engine is local (its ports are on loopback and, when
	// sleeper shares its networks, its bridge addresses are dialable).
	Address netip.Addr
}

// engineList is the repeatable --docker-host flag: each value is a comma
// list of [name=]URL. A command-line value replaces what the environment
// set, as every other flag does.
type engineList struct {
	hosts   []engineHost
	fromEnv bool
}

func (l *engineList) String() string {
	var s []string
	for _, h := range l.hosts {
		s = append(s, h.Name+"="+h.Host)
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (l *engineList) Set(v string) error {
	if l.fromEnv {
		l.hosts, l.fromEnv = nil, false
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, host := "", item
		if n, h, ok := strings.Cut(item, "="); ok && !strings.Contains(n, "/") {
			if !validEngineName(n) {
				return fmt.Errorf("engine name %q: must match [a-z0-9][a-z0-9_.-]*", n)
			}
			name, host = n, h
		}
		l.hosts = append(l.hosts, engineHost{Name: name, Host: host})
	}
	return nil
}

// addressList is the repeatable --docker-host-address flag: name=IP.
type addressList map[string]netip.Addr

func (a addressList) String() string { return fmt.Sprint(map[string]netip.Addr(a)) }

// Set implements flag.Value.
func (a addressList) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		name, ip, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%q: want name=IP", item)
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("engine %s address %q: %w", name, ip, err)
		}
		a[name] = addr
	}
	return nil
}

// validEngineName is the charset of engine names: container-name-like,
// never holding the "/" of identities or the ":" of depends_on.
func validEngineName(s string) bool {
	if s == "" || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// resolveEngines names the unnamed engines (local, engine2, …, by
// position), checks names are unique and sets each engine's dial address:
// --docker-host-address, else the IP of a tcp:// URL.
func resolveEngines(hosts []engineHost, addrs addressList) ([]engineHost, error) {
	if len(hosts) == 0 {
		hosts = []engineHost{{}}
	}
	seen := map[string]bool{}
	out := make([]engineHost, 0, len(hosts))
	for i, h := range hosts {
		if h.Name == "" {
			h.Name = "local"
			if i > 0 {
				h.Name = fmt.Sprintf("engine%d", i+1)
			}
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("--docker-host: engine name %q given twice", h.Name)
		}
		seen[h.Name] = true
		if a, ok := addrs[h.Name]; ok {
			h.Address = a
		} else if u, err := url.Parse(h.Host); err == nil && u.Scheme == "tcp" {
			// An IP names a remote engine, dialled there. A host name on
			// the first engine is sleeper's own engine through a socket
			// proxy (tcp://socket-proxy:2375, the usual deploy), whose
			// containers may share sleeper's networks; on another engine
			// it needs the address spelled out.
			if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
				h.Address = ip
			} else if u.Hostname() != "" && i > 0 {
				return nil, fmt.Errorf("--docker-host %s=%s: a host name, not an IP: give --docker-host-address %s=IP for its published ports", h.Name, h.Host, h.Name)
			}
		}
		out = append(out, h)
	}
	for n := range addrs {
		if !seen[n] {
			return nil, fmt.Errorf("--docker-host-address %s: no engine of that name", n)
		}
	}
	return out, nil
}
