package labels

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ParseStream parses one entry of the streams label in Docker's port syntax,
// [IP:]LISTEN:TARGET[/tcp|/udp]: an IPv6 address goes in brackets, the
// protocol defaults to tcp. Port ranges, an empty LISTEN ("IP::TARGET") and
// IPv6 zones are rejected: sleeper must know the exact port to listen on.
// The result round-trips through Stream.String.
func ParseStream(s string) (Stream, error) {
	s = strings.TrimSpace(s)
	st := Stream{Protocol: TCP}
	if rest, proto, ok := strings.Cut(s, "/"); ok {
		switch Protocol(strings.ToLower(proto)) {
		case TCP:
		case UDP:
			st.Protocol = UDP
		default:
			return Stream{}, fmt.Errorf("protocol %q: must be tcp or udp", proto)
		}
		s = rest
	}
	ports, err := st.parseIP(s)
	if err != nil {
		return Stream{}, err
	}
	listen, target, ok := strings.Cut(ports, ":")
	if !ok || strings.Contains(target, ":") {
		return Stream{}, errors.New("want [IP:]LISTEN:TARGET[/tcp|/udp], e.g. 5432:5432 or [::1]:53:53/udp")
	}
	if st.Listen, err = streamPort("listen", listen); err != nil {
		return Stream{}, err
	}
	if st.Target, err = streamPort("target", target); err != nil {
		return Stream{}, err
	}
	return st, nil
}

// parseIP takes the optional IP off the front of s, stores it in st and
// returns the LISTEN:TARGET rest.
func (st *Stream) parseIP(s string) (string, error) {
	if inner, rest, ok := strings.Cut(strings.TrimPrefix(s, "["), "]"); ok && strings.HasPrefix(s, "[") {
		ip, err := netip.ParseAddr(inner)
		switch {
		case err != nil || !ip.Is6():
			return "", fmt.Errorf("%q in brackets is not an IPv6 address", inner)
		case ip.Zone() != "":
			return "", fmt.Errorf("IPv6 zone in %q is not supported", inner)
		case !strings.HasPrefix(rest, ":"):
			return "", errors.New("want [IPv6]:LISTEN:TARGET, e.g. [::1]:5432:5432")
		}
		st.IP = ip
		return rest[1:], nil
	}
	switch strings.Count(s, ":") {
	case 0, 1:
		return s, nil
	case 2:
		ipText, rest, _ := strings.Cut(s, ":")
		ip, err := netip.ParseAddr(ipText)
		if err != nil || !ip.Is4() {
			return "", fmt.Errorf("%q is not an IPv4 address (IPv6 goes in brackets)", ipText)
		}
		st.IP = ip
		return rest, nil
	default:
		return "", errors.New("too many colons: an IPv6 address goes in brackets, e.g. [::1]:5432:5432")
	}
}

// streamPort parses one side of LISTEN:TARGET, naming ranges explicitly since
// Docker allows them and users will try.
func streamPort(side, s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("%s port is missing: sleeper needs the exact port", side)
	}
	if strings.Contains(s, "-") {
		return 0, fmt.Errorf("%s port %q: port ranges are not supported", side, s)
	}
	port, ok := parsePort(s)
	if !ok {
		return 0, fmt.Errorf("%s port %q: not a port number (1-65535)", side, s)
	}
	return port, nil
}

// String formats s in the syntax ParseStream reads, e.g. "[::1]:53:53/udp".
func (s Stream) String() string {
	var b strings.Builder
	switch {
	case s.IP.Is4():
		b.WriteString(s.IP.String() + ":")
	case s.IP.IsValid():
		b.WriteString("[" + s.IP.String() + "]:")
	}
	b.WriteString(strconv.Itoa(int(s.Listen)) + ":" + strconv.Itoa(int(s.Target)))
	if s.Protocol != "" {
		b.WriteString("/" + string(s.Protocol))
	}
	return b.String()
}

// conflicts reports whether s and o would bind the same socket on sleeper.
// No IP and "::" listen on every address of both families (Go opens
// dual-stack sockets), "0.0.0.0" on every IPv4 address.
func (s Stream) conflicts(o Stream) bool {
	if s.Listen != o.Listen || s.Protocol != o.Protocol {
		return false
	}
	allFamilies := func(ip netip.Addr) bool { return !ip.IsValid() || ip == netip.IPv6Unspecified() }
	allIPv4 := func(ip netip.Addr) bool { return ip == netip.IPv4Unspecified() }
	switch {
	case s.IP == o.IP, allFamilies(s.IP), allFamilies(o.IP):
		return true
	case allIPv4(s.IP):
		return o.IP.Is4()
	case allIPv4(o.IP):
		return s.IP.Is4()
	}
	return false
}
