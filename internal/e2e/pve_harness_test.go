package e2e

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/proxmox"
	"sleeper/pkg/watcher"
)

// pvePoller is the stack's Proxmox poller and the callback it reports to,
// set once the reconciler exists (as cmd/sleeper does).
type pvePoller struct {
	p  *proxmox.Poller
	rt *proxmox.Runtime
	cb atomic.Pointer[func(string, int)]
}

// bind connects the runtime and the poller to the registry, as
// cmd/sleeper's pveWiring.bind does.
func (pp *pvePoller) bind(reg *watcher.Registry, enqueue func(string)) {
	pp.rt.SetStubs(func(node string, vmid int) []proxmox.Stub {
		var out []proxmox.Stub
		for _, n := range reg.StubNames(proxmox.Key(node, vmid)) {
			if w := reg.Routes().ByName[n]; w != nil {
				s := w.Spec()
				out = append(out, proxmox.Stub{Container: n, Type: s.Proxmox.Type, StopMethod: s.StopMethod, Upstream: s.Upstream != nil})
			}
		}
		return out
	})
	f := func(node string, vmid int) {
		names := reg.StubNames(proxmox.Key(node, vmid))
		for n, w := range reg.Routes().ByName {
			if px := w.Spec().Proxmox; px != nil && px.VMID == vmid && px.Node != node {
				names = append(names, n)
			}
		}
		for _, n := range names {
			enqueue(n)
		}
	}
	pp.cb.Store(&f)
}

// startPVE builds the Proxmox client, runtime and poller against the
// stack's fake PVE, trusting the fake's certificate through a CA file.
func startPVE(t *testing.T, opt stackOptions, log *slog.Logger) (proxmox.Guests, *pvePoller) {
	t.Helper()
	if opt.pve == nil {
		return nil, nil
	}
	ca := filepath.Join(t.TempDir(), "pve-ca.pem")
	if err := os.WriteFile(ca, opt.pve.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := opt.pveSecret
	if secret == "" {
		secret = opt.pve.Secret()
	}
	client, err := proxmox.New(proxmox.Config{
		URL: opt.pve.URL(), TokenID: opt.pve.TokenID(), Secret: secret, CAFile: ca, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	pp := &pvePoller{}
	pp.p = proxmox.NewPoller(proxmox.PollerConfig{
		Client: client, Log: log, Interval: 300 * time.Millisecond, FastInterval: 50 * time.Millisecond,
		OnChange: func(node string, vmid int, _ string) {
			if f := pp.cb.Load(); f != nil {
				(*f)(node, vmid)
			}
		},
	})
	pp.rt = proxmox.NewRuntime(proxmox.RuntimeConfig{
		Client: client, Poller: pp.p, Log: log, LabelPrefix: opt.prefix, AddressWait: opt.pveAddrWait,
	})
	return pp.rt, pp
}
