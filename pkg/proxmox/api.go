package proxmox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
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

// Guest types, as /cluster/resources names them.
const (
	TypeLXC  = "lxc"
	TypeQEMU = "qemu"
)

// Status is the current state of one guest (status/current).
type Status struct {
	VMID   int
	Name   string
	Status string // StatusRunning or StatusStopped
	Uptime time.Duration
	// Lock is the config lock: "backup", "migrate", "suspended" (a VM
	// hibernated to disk)…; "" when unlocked.
	Lock string
	// QMPStatus is a VM's QEMU state: "running", "paused", "stopped"…;
	// "" for an LXC.
	QMPStatus string
	// HA reports whether the HA stack manages the guest.
	HA bool
	// Mem is the memory in use, in bytes; 0 while stopped.
	Mem uint64
	// CPU is the CPU use over PVE's last sampling interval as a fraction
	// of the guest's CPUs (1 is all of them busy); CPUs is how many it has.
	CPU  float64
	CPUs float64
}

// Running reports whether the guest runs.
func (s Status) Running() bool { return s.Status == StatusRunning }

// Paused reports whether a VM is suspended in memory: it runs, but its
// QEMU is paused.
func (s Status) Paused() bool { return s.Running() && s.QMPStatus == "paused" }

// Interface is one network interface of a running LXC guest.
type Interface struct {
	Name   string // "eth0"
	HWAddr string // "bc:24:11:aa:bb:cc"
	// Inet and Inet6 hold only the last address of each family (often a
	// link-local IPv6 one), as pve-container reports them.
	Inet  string // "192.0.2.10/24", empty when it has no IPv4 address
	Inet6 string // "2001:db8::10/64", empty when it has no IPv6 address
	// Addrs is every address, where the node reports the full list
	// (newer pve-container); nil on older nodes.
	Addrs []netip.Addr
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
	Lock     string
	HAState  string // "started", "stopped"…; "" when not HA-managed
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

// bytes is a size that cannot be negative; a nonsense value reads as 0.
func (n number) bytes() uint64 {
	if n <= 0 || float64(n) >= math.MaxUint64 {
		return 0
	}
	return uint64(n)
}

func (n number) seconds() time.Duration {
	if n <= 0 || float64(n) > math.MaxInt64/float64(time.Second) {
		return 0
	}
	return time.Duration(float64(n) * float64(time.Second))
}

func guestPath(node string, vmid int, rest string) string { return kindPath(TypeLXC, node, vmid, rest) }

func kindPath(kind, node string, vmid int, rest string) string {
	return "/nodes/" + url.PathEscape(node) + "/" + kind + "/" + strconv.Itoa(vmid) + rest
}

// Status returns the current state of an LXC guest.
func (c *Client) Status(ctx context.Context, node string, vmid int) (Status, error) {
	return c.status(ctx, TypeLXC, node, vmid)
}

// VMStatus returns the current state of a QEMU VM, with its qmpstatus.
func (c *Client) VMStatus(ctx context.Context, node string, vmid int) (Status, error) {
	return c.status(ctx, TypeQEMU, node, vmid)
}

func (c *Client) status(ctx context.Context, kind, node string, vmid int) (Status, error) {
	var w struct {
		VMID      number `json:"vmid"`
		Name      string `json:"name"`
		Status    string `json:"status"`
		Uptime    number `json:"uptime"`
		Lock      string `json:"lock"`
		QMPStatus string `json:"qmpstatus"`
		Mem       number `json:"mem"`
		CPU       number `json:"cpu"`
		CPUs      number `json:"cpus"`
		HA        struct {
			Managed number `json:"managed"`
		} `json:"ha"`
	}
	if err := c.get(ctx, kindPath(kind, node, vmid, "/status/current"), nil, &w); err != nil {
		return Status{}, err
	}
	s := Status{VMID: w.VMID.int(), Name: w.Name, Status: w.Status, Uptime: w.Uptime.seconds(),
		Lock: w.Lock, QMPStatus: w.QMPStatus, HA: w.HA.Managed != 0,
		Mem: w.Mem.bytes(), CPU: max(float64(w.CPU), 0), CPUs: max(float64(w.CPUs), 0)}
	if s.VMID == 0 {
		s.VMID = vmid
	}
	return s, nil
}

// Start starts an LXC guest and returns the task doing it. A guest that
// runs already fails at once with an error matching ErrAlreadyRunning.
func (c *Client) Start(ctx context.Context, node string, vmid int) (UPID, error) {
	return c.action(ctx, TypeLXC, node, vmid, "start", url.Values{})
}

// action posts status/<what> and returns the task's UPID.
func (c *Client) action(ctx context.Context, kind, node string, vmid int, what string, form url.Values) (UPID, error) {
	var upid UPID
	err := c.post(ctx, kindPath(kind, node, vmid, "/status/"+what), form, &upid)
	return upid, err
}

// Shutdown asks an LXC guest to shut down cleanly within timeout (whole
// seconds, rounded up). With forceStop the task kills it after the timeout;
// without, the task fails. A stopped guest fails at once with an error
// matching ErrNotRunning.
func (c *Client) Shutdown(ctx context.Context, node string, vmid int, timeout time.Duration, forceStop bool) (UPID, error) {
	return c.shutdown(ctx, TypeLXC, node, vmid, timeout, forceStop)
}

func (c *Client) shutdown(ctx context.Context, kind, node string, vmid int, timeout time.Duration, forceStop bool) (UPID, error) {
	form := url.Values{}
	form.Set("timeout", strconv.Itoa(ceilSeconds(timeout)))
	form.Set("forceStop", boolForm(forceStop))
	return c.action(ctx, kind, node, vmid, "shutdown", form)
}

// Stop kills an LXC guest at once (lxc-stop --kill). A stopped guest fails
// at once with an error matching ErrNotRunning.
func (c *Client) Stop(ctx context.Context, node string, vmid int) (UPID, error) {
	return c.action(ctx, TypeLXC, node, vmid, "stop", url.Values{})
}

// Interfaces lists the network interfaces of a running LXC guest. It
// returns nil while the guest is stopped (PVE answers {"data": null}).
func (c *Client) Interfaces(ctx context.Context, node string, vmid int) ([]Interface, error) {
	var w []struct {
		Name   string `json:"name"`
		HWAddr string `json:"hwaddr"`
		Inet   string `json:"inet"`
		Inet6  string `json:"inet6"`
		Addrs  []struct {
			Addr string `json:"ip-address"`
		} `json:"ip-addresses"`
	}
	if err := c.get(ctx, guestPath(node, vmid, "/interfaces"), nil, &w); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, nil
	}
	out := make([]Interface, 0, len(w))
	for _, i := range w {
		ifc := Interface{Name: i.Name, HWAddr: i.HWAddr, Inet: i.Inet, Inet6: i.Inet6}
		for _, a := range i.Addrs {
			if ip, ok := parseInet(a.Addr); ok {
				ifc.Addrs = append(ifc.Addrs, ip)
			}
		}
		out = append(out, ifc)
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
		Lock     string `json:"lock"`
		HAState  string `json:"hastate"`
	}
	if err := c.get(ctx, "/cluster/resources", url.Values{"type": {"vm"}}, &w); err != nil {
		return nil, err
	}
	out := make([]Resource, 0, len(w))
	for _, r := range w {
		out = append(out, Resource{
			ID: r.ID, Type: r.Type, VMID: r.VMID.int(), Node: r.Node, Name: r.Name,
			Status: r.Status, Uptime: r.Uptime.seconds(), Template: r.Template != 0,
			Lock: r.Lock, HAState: r.HAState,
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
