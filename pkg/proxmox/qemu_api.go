package proxmox

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// VMStart starts a QEMU VM (and restores one hibernated to disk). A VM that
// runs already fails at once with an error matching ErrAlreadyRunning.
func (c *Client) VMStart(ctx context.Context, node string, vmid int) (UPID, error) {
	return c.action(ctx, TypeQEMU, node, vmid, "start", url.Values{})
}

// VMShutdown asks a VM's OS to shut down (ACPI, or the guest agent) within
// timeout; with forceStop PVE stops it at the timeout in the same task.
func (c *Client) VMShutdown(ctx context.Context, node string, vmid int, timeout time.Duration, forceStop bool) (UPID, error) {
	return c.shutdown(ctx, TypeQEMU, node, vmid, timeout, forceStop)
}

// VMStop stops a VM at once, like pulling its power.
func (c *Client) VMStop(ctx context.Context, node string, vmid int) (UPID, error) {
	return c.action(ctx, TypeQEMU, node, vmid, "stop", url.Values{})
}

// VMSuspend pauses a VM in memory or, toDisk, hibernates it: its memory is
// saved to a state volume and it stops with lock "suspended" until the next
// start restores it.
func (c *Client) VMSuspend(ctx context.Context, node string, vmid int, toDisk bool) (UPID, error) {
	form := url.Values{}
	if toDisk {
		form.Set("todisk", "1")
	}
	return c.action(ctx, TypeQEMU, node, vmid, "suspend", form)
}

// VMResume continues a VM paused in memory.
func (c *Client) VMResume(ctx context.Context, node string, vmid int) (UPID, error) {
	return c.action(ctx, TypeQEMU, node, vmid, "resume", url.Values{})
}

// AgentInterfaces asks the VM's QEMU guest agent for its interfaces. It
// fails (500) while the VM is stopped, before the agent runs, or when the
// VM has none.
func (c *Client) AgentInterfaces(ctx context.Context, node string, vmid int) ([]Interface, error) {
	var w struct {
		Result []struct {
			Name   string `json:"name"`
			HWAddr string `json:"hardware-address"`
			Addrs  []struct {
				Type string `json:"ip-address-type"`
				Addr string `json:"ip-address"`
			} `json:"ip-addresses"`
		} `json:"result"`
	}
	if err := c.get(ctx, kindPath(TypeQEMU, node, vmid, "/agent/network-get-interfaces"), nil, &w); err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(w.Result))
	for _, r := range w.Result {
		ifc := Interface{Name: r.Name, HWAddr: r.HWAddr}
		for _, a := range r.Addrs {
			ip, ok := parseInet(a.Addr)
			if !ok {
				continue
			}
			ifc.Addrs = append(ifc.Addrs, ip)
			if strings.EqualFold(a.Type, "ipv4") && ifc.Inet == "" {
				ifc.Inet = ip.String()
			}
		}
		out = append(out, ifc)
	}
	return out, nil
}

// LXCConfigAddr reads the static address of an LXC from its config
// (net0..net9: ip=A/N, or ip6=A/N), for nodes without /interfaces. It
// returns false when every interface is on DHCP or has none.
func (c *Client) LXCConfigAddr(ctx context.Context, node string, vmid int) (Interface, bool, error) {
	var cfg map[string]any
	if err := c.get(ctx, guestPath(node, vmid, "/config"), nil, &cfg); err != nil {
		return Interface{}, false, err
	}
	for i := range 10 {
		v, _ := cfg["net"+string(rune('0'+i))].(string)
		ifc := Interface{Name: "net" + string(rune('0'+i))}
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			switch k {
			case "name":
				ifc.Name = val
			case "ip", "ip6":
				if ip, ok := parseInet(val); ok {
					ifc.Addrs = append(ifc.Addrs, ip)
				}
			}
		}
		if len(ifc.Addrs) > 0 {
			return ifc, true, nil
		}
	}
	return Interface{}, false, nil
}
