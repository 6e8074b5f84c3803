package e2e

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"sleeper/pkg/proxmox"
)

// pvePoller is the stack's Proxmox poller and the callback it reports to,
// set once the reconciler exists (as cmd/sleeper does).
type pvePoller struct {
	p  *proxmox.Poller
	cb atomic.Pointer[func(string, int)]
}

func (pp *pvePoller) set(f func(string, int)) { pp.cb.Store(&f) }

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
	return proxmox.NewRuntime(proxmox.RuntimeConfig{Client: client, Poller: pp.p, Log: log}), pp
}
