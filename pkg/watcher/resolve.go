package watcher

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"

	"sleeper/pkg/labels"
)

// TargetPort is the container port requests go to: the port label, else the
// only exposed TCP port, else 80.
func TargetPort(c Container, spec *labels.Spec) uint16 {
	if spec.Port != 0 {
		return spec.Port
	}
	if len(c.Exposed) == 1 {
		return c.Exposed[0]
	}
	return 80
}

// ResolveUpstream returns the URL requests for c go to: the upstream label,
// else the scheme and address from ResolveAddr. It is called after every
// wake because published ports and IPs change on every start.
func ResolveUpstream(c Container, spec *labels.Spec, self []string) (*url.URL, error) {
	if spec.Upstream != nil {
		return spec.Upstream, nil
	}
	addr, err := ResolveAddr(c, TargetPort(c, spec), "tcp", spec.Network, self)
	if err != nil {
		return nil, err
	}
	return &url.URL{Scheme: spec.Scheme, Host: addr}, nil
}

// ResolveAddr finds where to dial port/proto of c, in this order:
//  1. sleeper runs in a container sharing a network with c (self lists its
//     networks): c's IP there, the network label picking which;
//  2. the port is published on the host: that binding, on loopback when it
//     is bound to every address;
//  3. c's IP on the network label's network, else on its first network.
func ResolveAddr(c Container, port uint16, proto, network string, self []string) (string, error) {
	p := strconv.Itoa(int(port))
	if len(self) > 0 {
		for _, n := range c.Networks {
			if (network == "" || n.Name == network) && slices.Contains(self, n.Name) && n.IP.IsValid() {
				return net.JoinHostPort(n.IP.String(), p), nil
			}
		}
	}
	if hp, ok := c.Published[p+"/"+proto]; ok {
		return hp, nil
	}
	for _, n := range c.Networks {
		if (network == "" || n.Name == network) && n.IP.IsValid() {
			return net.JoinHostPort(n.IP.String(), p), nil
		}
	}
	if network != "" {
		return "", fmt.Errorf("no address for port %s/%s: not published and not on network %q", p, proto, network)
	}
	return "", fmt.Errorf("no address for port %s/%s: not published and on no network", p, proto)
}
