package main

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"sleeper/pkg/proxmox"
)

// pveWiring holds the Proxmox client, its poller and the LXC runtime. The
// poller reports changes through a callback set after the reconciler exists.
type pveWiring struct {
	rt      *proxmox.Runtime
	poller  *proxmox.Poller
	changed atomic.Pointer[func(node string, vmid int)]
}

// newProxmox builds the Proxmox side when --proxmox-url is set; nil otherwise.
func newProxmox(cfg config, log *slog.Logger) (*pveWiring, error) {
	if cfg.ProxmoxURL == "" {
		return nil, nil
	}
	log = log.With("proxmox", cfg.ProxmoxURL)
	client, err := proxmox.New(proxmox.Config{
		URL:         cfg.ProxmoxURL,
		TokenID:     cfg.ProxmoxTokenID,
		Secret:      cfg.ProxmoxSecret,
		CAFile:      cfg.ProxmoxCAFile,
		Fingerprint: cfg.ProxmoxFingerprint,
		InsecureTLS: cfg.ProxmoxInsecureTLS,
		Log:         log,
	})
	if err != nil {
		return nil, fmt.Errorf("proxmox: %w", err)
	}
	p := &pveWiring{}
	p.poller = proxmox.NewPoller(proxmox.PollerConfig{
		Client: client,
		Log:    log,
		OnChange: func(node string, vmid int, _ string) {
			if f := p.changed.Load(); f != nil {
				(*f)(node, vmid)
			}
		},
	})
	p.rt = proxmox.NewRuntime(proxmox.RuntimeConfig{Client: client, Poller: p.poller, Log: log})
	return p, nil
}

// guests is what proxmox.Targets drives: nil (not configured) when p is nil.
func (p *pveWiring) guests() proxmox.Guests {
	if p == nil {
		return nil
	}
	return p.rt
}

func (p *pveWiring) onChange(f func(node string, vmid int)) { p.changed.Store(&f) }
