package proxmox

import (
	"context"
	"errors"
	"time"

	"sleeper/pkg/labels"
)

// hibernates reports whether a stub of the guest asks for hibernate.
func (g *Guest) hibernates() bool {
	for _, s := range g.stubs() {
		if s.StopMethod == labels.StopMethodHibernate {
			return true
		}
	}
	return false
}

// vmStart wakes a VM: a paused one is resumed; a stopped one (hibernated
// or not) is started, which restores a hibernated one where it was. Then
// it waits until the VM runs and, unless every stub sets sleeper.upstream,
// until its guest agent shows an address: without one the wake fails with
// ErrNoVMAddress, which tells the user what to do.
func (g *Guest) vmStart(ctx context.Context, node string) error {
	st, err := g.rt.client.VMStatus(ctx, node, g.vmid)
	if err != nil {
		return g.wrap("", err)
	}
	var upid UPID
	switch {
	case st.Paused():
		if err := g.vmResume(ctx, node); err != nil {
			return err
		}
	case st.Running():
	default:
		if err := g.awaitUnlocked(ctx, node, TypeQEMU); err != nil {
			return g.wrap("wait for the lock", err)
		}
		upid, err = g.rt.client.VMStart(ctx, node, g.vmid)
		switch {
		case errors.Is(err, ErrAlreadyRunning):
		case err != nil:
			return g.wrap("", err)
		default:
			if err := g.rt.client.WaitTask(ctx, node, upid); err != nil {
				return g.wrap("start task", err)
			}
		}
	}
	if err := g.awaitRunning(ctx, node, TypeQEMU, upid.viaHA()); err != nil {
		return err
	}
	if usesUpstream(g.stubs()) || g.awaitAddr(ctx, node, TypeQEMU) {
		return nil
	}
	_, _, aerr := g.vmAddr(ctx, node)
	if aerr != nil {
		return g.wrap("", errors.Join(ErrNoVMAddress, aerr))
	}
	return g.wrap("", ErrNoVMAddress)
}

// vmHibernate suspends a VM to disk and waits until it is stopped.
func (g *Guest) vmHibernate(ctx context.Context, node string) error {
	upid, err := g.rt.client.VMSuspend(ctx, node, g.vmid, true)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return g.wrap("hibernate", err)
	}
	if err := g.rt.client.WaitTask(ctx, node, upid); err != nil {
		return g.wrap("hibernate task", err)
	}
	return g.awaitStopped(ctx, node, TypeQEMU, killSlack)
}

// vmPause suspends a VM in memory and waits until QEMU says paused.
func (g *Guest) vmPause(ctx context.Context, node string) error {
	upid, err := g.rt.client.VMSuspend(ctx, node, g.vmid, false)
	if err != nil {
		return g.wrap("pause", err)
	}
	if err := g.rt.client.WaitTask(ctx, node, upid); err != nil {
		return g.wrap("pause task", err)
	}
	return g.awaitQMP(ctx, node, true)
}

// vmResume continues a paused VM and waits until QEMU runs it.
func (g *Guest) vmResume(ctx context.Context, node string) error {
	upid, err := g.rt.client.VMResume(ctx, node, g.vmid)
	if err != nil {
		return g.wrap("resume", err)
	}
	if err := g.rt.client.WaitTask(ctx, node, upid); err != nil {
		return g.wrap("resume task", err)
	}
	return g.awaitQMP(ctx, node, false)
}

func (g *Guest) awaitQMP(ctx context.Context, node string, paused bool) error {
	ctx, cancel := context.WithTimeout(ctx, killSlack)
	defer cancel()
	err := poll(ctx, 50*time.Millisecond, time.Second, func() (bool, error) {
		st, err := g.rt.client.VMStatus(ctx, node, g.vmid)
		return err == nil && st.Paused() == paused, err
	})
	if err != nil {
		return g.wrap("wait for qmpstatus", err)
	}
	return nil
}
