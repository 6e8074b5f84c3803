package swarm

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

// Inspect implements watcher.Runtime and watcher.Source: the service (by
// name or ID) and its tasks, as one watcher.Container.
func (s *Swarm) Inspect(ctx context.Context, ref string) (watcher.Container, error) {
	began := time.Now()
	svc, err := s.service(ctx, ref)
	if err != nil {
		return watcher.Container{}, err
	}
	tasks, err := s.runningTasks(ctx, svc.ID)
	if err != nil {
		return watcher.Container{}, err
	}
	c := s.convert(ctx, svc, tasks)
	c.InspectedAt = began
	return c, nil
}

// service inspects one service; a missing one is watcher.ErrNotFound.
func (s *Swarm) service(ctx context.Context, ref string) (swarm.Service, error) {
	res, err := s.cli.ServiceInspect(ctx, ref, client.ServiceInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return swarm.Service{}, fmt.Errorf("inspect service %s: %w", ref, watcher.ErrNotFound)
	case err != nil:
		return swarm.Service{}, fmt.Errorf("inspect service %s: %w", ref, err)
	}
	return res.Service, nil
}

// runningTasks lists the tasks of a service (all services when id is "")
// that the orchestrator wants running: those that run, start or are
// being placed, not the history of shut-down ones.
func (s *Swarm) runningTasks(ctx context.Context, id string) ([]swarm.Task, error) {
	f := client.Filters{}.Add("desired-state", "running")
	if id != "" {
		f = f.Add("service", id)
	}
	res, err := s.cli.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list tasks of service %s: %w", id, err)
	}
	return res.Items, nil
}

// replicas is the service's desired count; ok is false for a service not
// in replicated mode (global, jobs), which cannot be scaled.
func replicas(svc swarm.Service) (n uint64, ok bool) {
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		return *r.Replicas, true
	}
	return 0, false
}

// convert builds the watcher's view of a service from it and its tasks
// (tasks of other services are ignored). Status: stopped at 0 replicas,
// running while a task runs, restarting while tasks are wanted but none
// runs yet. StartedAt is when the oldest running task began, so a later
// observation of the same run compares equal and a new run is newer.
func (s *Swarm) convert(ctx context.Context, svc swarm.Service, tasks []swarm.Task) watcher.Container {
	n, replicated := replicas(svc)
	if n > 0 {
		s.rememberAwake(svc.ID, n)
	}
	c := watcher.Container{
		ID:        svc.ID,
		Name:      svc.Spec.Name,
		Labels:    svc.Spec.Labels,
		Created:   svc.CreatedAt,
		Status:    watcher.StatusStopped,
		Published: map[string]string{},
	}
	if p := svc.Spec.Labels[stackNamespace]; p != "" {
		c.Project, c.Service = p, strings.TrimPrefix(svc.Spec.Name, p+"_")
	}
	running := 0
	for _, t := range tasks {
		if t.ServiceID != svc.ID || t.Status.State != swarm.TaskStateRunning {
			continue
		}
		running++
		if c.StartedAt.IsZero() || t.Status.Timestamp.Before(c.StartedAt) {
			c.StartedAt = t.Status.Timestamp
		}
		// Host-mode ports without a fixed number are only in the task.
		s.publish(c.Published, t.Status.PortStatus.Ports)
	}
	switch {
	case running > 0:
		c.Status = watcher.StatusRunning
	case n > 0 || !replicated:
		c.Status = watcher.StatusRestarting
		select {
		case s.recheck <- svc.Spec.Name:
		default: // full: a recheck is pending for most of them anyway
		}
	}
	s.publish(c.Published, svc.Endpoint.Ports)
	for _, p := range svc.Endpoint.Ports {
		if tcp(p) && !slices.Contains(c.Exposed, uint16(p.TargetPort)) {
			c.Exposed = append(c.Exposed, uint16(p.TargetPort))
		}
	}
	slices.Sort(c.Exposed)
	c.Networks = s.virtualIPs(ctx, svc.Endpoint.VirtualIPs)
	return c
}

func tcp(p swarm.PortConfig) bool { return p.Protocol == "" || p.Protocol == "tcp" }

// publish records where each published TCP port is dialled; the first
// seen wins, and the caller gives task ports before the service's.
func (s *Swarm) publish(into map[string]string, ports []swarm.PortConfig) {
	for _, p := range ports {
		if !tcp(p) || p.PublishedPort == 0 {
			continue
		}
		key := strconv.Itoa(int(p.TargetPort)) + "/tcp"
		if _, ok := into[key]; !ok {
			into[key] = net.JoinHostPort(s.cfg.PublishedHost, strconv.Itoa(int(p.PublishedPort)))
		}
	}
}

// virtualIPs names the service's virtual IPs by network, leaving out the
// ingress network (only the routing mesh dials it). A network the engine
// no longer knows is left out too.
func (s *Swarm) virtualIPs(ctx context.Context, vips []swarm.EndpointVirtualIP) []watcher.Network {
	var out []watcher.Network
	for _, v := range vips {
		n, ok := s.network(ctx, v.NetworkID)
		if !ok || n.ingress || !v.Addr.IsValid() {
			continue
		}
		out = append(out, watcher.Network{Name: n.name, IP: v.Addr.Addr()})
	}
	slices.SortFunc(out, func(a, b watcher.Network) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// network names a network by ID, listing the engine's networks on a miss:
// networks are few and rarely change, and a stack's are shared by its
// services.
func (s *Swarm) network(ctx context.Context, id string) (netInfo, bool) {
	s.mu.Lock()
	n, ok := s.nets[id]
	s.mu.Unlock()
	if ok {
		return n, true
	}
	res, err := s.cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		s.log.Debug("list networks for a service's virtual IPs", "error", err)
		return netInfo{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nw := range res.Items {
		s.nets[nw.ID] = netInfo{name: nw.Name, ingress: nw.Ingress}
	}
	n, ok = s.nets[id]
	return n, ok
}

// rememberAwake records the count a service runs while awake.
func (s *Swarm) rememberAwake(id string, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awake[id] = n
}
