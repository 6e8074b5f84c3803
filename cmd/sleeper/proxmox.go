package main

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"sleeper/pkg/proxmox"
	"sleeper/pkg/watcher"
)

// pveWiring holds the Proxmox client, its poller and the guest runtime. The
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
	p.rt = proxmox.NewRuntime(proxmox.RuntimeConfig{
		Client: client, Poller: p.poller, Log: log, LabelPrefix: cfg.LabelPrefix,
	})
	return p, nil
}

// guests is what proxmox.Targets drives: nil (not configured) when p is nil.
func (p *pveWiring) guests() proxmox.Guests {
	if p == nil {
		return nil
	}
	return p.rt
}

// bind connects the Proxmox side to the registry once it exists: the
// runtime learns what each guest's stub containers ask, and a change the
// poller sees enqueues every stub of that vmid, whichever node its label
// names (a migrated guest is reported under its new node).
func (p *pveWiring) bind(reg *watcher.Registry, enqueue func(name string)) {
	p.rt.SetStubs(registryStubs(reg))
	f := func(node string, vmid int) {
		for _, n := range stubsOfVMID(reg, node, vmid) {
			enqueue(n)
		}
	}
	p.changed.Store(&f)
}

// registryStubs reads the stubs of a guest from the registry's routes.
func registryStubs(reg *watcher.Registry) proxmox.StubsFunc {
	return func(node string, vmid int) []proxmox.Stub {
		var out []proxmox.Stub
		for _, n := range reg.StubNames(proxmox.Key(node, vmid)) {
			w := reg.Routes().ByName[n]
			if w == nil {
				continue
			}
			s := w.Spec()
			out = append(out, proxmox.Stub{
				Container: n, Type: s.Proxmox.Type, StopMethod: s.StopMethod, Upstream: s.Upstream != nil,
			})
		}
		return out
	}
}

// stubsOfVMID lists the stubs naming the guest on node, and those naming
// its vmid on any other node (vmids are unique in a cluster).
func stubsOfVMID(reg *watcher.Registry, node string, vmid int) []string {
	names := reg.StubNames(proxmox.Key(node, vmid))
	for n, w := range reg.Routes().ByName {
		if px := w.Spec().Proxmox; px != nil && px.VMID == vmid && px.Node != node {
			names = append(names, n)
		}
	}
	return names
}
