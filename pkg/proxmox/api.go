package proxmox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// Guest statuses as PVE reports them. status/current of an LXC is only ever
// running or stopped; the cluster resource list may also say unknown for a
// guest on a node that is offline.
const (
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// Status is the current state of one LXC guest (status/current).
type Status struct {
	VMID   int
	Name   string
	Status string // StatusRunning or StatusStopped
	Uptime time.Duration
}

// Running reports whether the guest runs.
func (s Status) Running() bool { return s.Status == StatusRunning }

// Interface is one network interface of a running LXC guest.
type Interface struct {
	Name   string // "eth0"
	HWAddr string // "bc:24:11:aa:bb:cc"
	Inet   string // "192.0.2.10/24", empty when it has no IPv4 address
	Inet6  string // "2001:db8::10/64", empty when it has no IPv6 address
}

// Resource is one guest of the cluster (/cluster/resources?type=vm).
type Resource struct {
	ID       string // "lxc/101"
	Type     string // "lxc" or "qemu"
	VMID     int
	Node     string
	Name     string
	Status   string // "running", "stopped", "unknown"…
	Uptime   time.Duration
	Template bool
}

// number decodes a JSON number that PVE may send as a string ("101") or
// leave out; Perl's JSON does not keep the two apart reliably.
type number float64

// UnmarshalJSON implements json.Unmarshaler.
func (n *number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*n = 0
			return nil
		}
		b = []byte(s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*n = number(f)
	return nil
}

func (n number) int() int { return int(n) }

func (n number) seconds() time.Duration {
	if n <= 0 || float64(n) > math.MaxInt64/float64(time.Second) {
		return 0
	}
	return time.Duration(float64(n) * float64(time.Second))
}

func guestPath(node string, vmid int, rest string) string {
	return "/nodes/" + url.PathEscape(node) + "/lxc/" + strconv.Itoa(vmid) + rest
}

// Status returns the current state of an LXC guest.
func (c *Client) Status(ctx context.Context, node string, vmid int) (Status, error) {
	var w struct {
		VMID   number `json:"vmid"`
		Name   string `json:"name"`
		Status string `json:"status"`
		Uptime number `json:"uptime"`
	}
	if err := c.get(ctx, guestPath(node, vmid, "/status/current"), nil, &w); err != nil {
		return Status{}, err
	}
	s := Status{VMID: w.VMID.int(), Name: w.Name, Status: w.Status, Uptime: w.Uptime.seconds()}
	if s.VMID == 0 {
		s.VMID = vmid
	}
	return s, nil
}

// Start starts an LXC guest and returns the task doing it. A guest that
// runs already fails at once with an error matching ErrAlreadyRunning.
func (c *Client) Start(ctx context.Context, node string, vmid int) (UPID, error) {
	var upid UPID
	err := c.post(ctx, guestPath(node, vmid, "/status/start"), url.Values{}, &upid)
	return upid, err
}

// Shutdown asks an LXC guest to shut down cleanly within timeout (whole
// seconds, rounded up). With forceStop the task kills it after the timeout;
// without, the task fails. A stopped guest fails at once with an error
// matching ErrNotRunning.
func (c *Client) Shutdown(ctx context.Context, node string, vmid int, timeout time.Duration, forceStop bool) (UPID, error) {
	form := url.Values{}
	form.Set("timeout", strconv.Itoa(ceilSeconds(timeout)))
	form.Set("forceStop", boolForm(forceStop))
	var upid UPID
	err := c.post(ctx, guestPath(node, vmid, "/status/shutdown"), form, &upid)
	return upid, err
}

// Stop kills an LXC guest at once (lxc-stop --kill). A stopped guest fails
// at once with an error matching ErrNotRunning.
func (c *Client) Stop(ctx context.Context, node string, vmid int) (UPID, error) {
	var upid UPID
	err := c.post(ctx, guestPath(node, vmid, "/status/stop"), url.Values{}, &upid)
	return upid, err
}

// Interfaces lists the network interfaces of a running LXC guest. It
// returns nil while the guest is stopped (PVE answers {"data": null}).
func (c *Client) Interfaces(ctx context.Context, node string, vmid int) ([]Interface, error) {
	var w []struct {
		Name   string `json:"name"`
		HWAddr string `json:"hwaddr"`
		Inet   string `json:"inet"`
		Inet6  string `json:"inet6"`
	}
	if err := c.get(ctx, guestPath(node, vmid, "/interfaces"), nil, &w); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, nil
	}
	out := make([]Interface, 0, len(w))
	for _, i := range w {
		out = append(out, Interface(i))
	}
	return out, nil
}

// Resources lists every guest (LXC and QEMU) of the cluster in one call,
// with its node and status.
func (c *Client) Resources(ctx context.Context) ([]Resource, error) {
	var w []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		VMID     number `json:"vmid"`
		Node     string `json:"node"`
		Name     string `json:"name"`
		Status   string `json:"status"`
		Uptime   number `json:"uptime"`
		Template number `json:"template"`
	}
	if err := c.get(ctx, "/cluster/resources", url.Values{"type": {"vm"}}, &w); err != nil {
		return nil, err
	}
	out := make([]Resource, 0, len(w))
	for _, r := range w {
		out = append(out, Resource{
			ID: r.ID, Type: r.Type, VMID: r.VMID.int(), Node: r.Node, Name: r.Name,
			Status: r.Status, Uptime: r.Uptime.seconds(), Template: r.Template != 0,
		})
	}
	return out, nil
}

// ceilSeconds rounds a duration up to whole seconds, at least one: PVE takes
// integer seconds, and 0 would not give the guest any grace at all.
func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// boolForm encodes a boolean as PVE's UI does.
func boolForm(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
