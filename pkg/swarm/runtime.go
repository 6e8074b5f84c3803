package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// ErrPauseUnsupported is returned by Pause and Unpause: a service has no
// paused state, only 0 replicas.
var ErrPauseUnsupported = errors.New("swarm services cannot be paused")

// ErrNotReplicated is returned when a service to wake or put to sleep is
// not in replicated mode (global services and jobs have no replica count).
var ErrNotReplicated = errors.New("only replicated swarm services can be scaled to 0")

// updateAttempts bounds the retries of an update that lost a race with
// another writer (a deploy, an operator's scale).
const updateAttempts = 5

// Start implements watcher.Runtime: a service at 0 replicas is scaled up to
// its awake count; then Start waits until one of its tasks runs. A service
// already above 0 (scaled by hand) keeps its count.
func (s *Swarm) Start(ctx context.Context, id string) error {
	svc, err := s.scale(ctx, id, func(svc swarm.Service, cur uint64) (uint64, bool) {
		if cur > 0 {
			return 0, false
		}
		return s.awakeCount(svc), true
	})
	if err != nil {
		return err
	}
	return s.await(ctx, svc, func(running int, _ int) bool { return running > 0 })
}

// Stop implements watcher.Runtime: scale to 0 and wait until no task runs.
// The engine stops each task with the service's own stop signal and grace
// period (stop_signal and stop_grace_period in a stack file).
func (s *Swarm) Stop(ctx context.Context, id string, _ watcher.StopOptions) error {
	return s.sleep(ctx, id)
}

// Kill implements watcher.Runtime as Stop: the engine has no kill for a
// service, only a scale to 0.
func (s *Swarm) Kill(ctx context.Context, id string, _ string) error { return s.sleep(ctx, id) }

// Pause implements watcher.Runtime: always an error naming the label.
func (s *Swarm) Pause(_ context.Context, id string) error {
	return fmt.Errorf("service %s: label %s.%s=%s: %w (use stop or kill)",
		id, s.cfg.Prefix, labels.KeyStopMethod, labels.StopMethodPause, ErrPauseUnsupported)
}

// Unpause implements watcher.Runtime. A service is never reported paused,
// so the watcher never asks; an error says so if it does.
func (s *Swarm) Unpause(_ context.Context, id string) error {
	return fmt.Errorf("unpause service %s: %w", id, ErrPauseUnsupported)
}

func (s *Swarm) sleep(ctx context.Context, id string) error {
	svc, err := s.scale(ctx, id, func(_ swarm.Service, cur uint64) (uint64, bool) { return 0, cur > 0 })
	if err != nil {
		return err
	}
	return s.await(ctx, svc, func(running, _ int) bool { return running == 0 })
}

// awakeCount is what a service wakes to: its replicas label, else the count
// it was last seen with above 0 (by this process, else the engine's
// previous spec), else 1.
func (s *Swarm) awakeCount(svc swarm.Service) uint64 {
	if spec, err := labels.Parse(svc.Spec.Labels, labels.Options{Prefix: s.cfg.Prefix}); err == nil && spec.Replicas > 0 {
		return spec.Replicas
	}
	s.mu.Lock()
	n := s.awake[svc.ID]
	s.mu.Unlock()
	if n > 0 {
		return n
	}
	if p := svc.PreviousSpec; p != nil && p.Mode.Replicated != nil && p.Mode.Replicated.Replicas != nil && *p.Mode.Replicated.Replicas > 0 {
		return *p.Mode.Replicated.Replicas
	}
	return 1
}

// scale reads the service, asks want for the count to set, and sends the
// update with the version it read; an update that lost a race is read and
// decided again. It returns the service as last read.
func (s *Swarm) scale(ctx context.Context, id string, want func(svc swarm.Service, cur uint64) (uint64, bool)) (swarm.Service, error) {
	for attempt := 1; ; attempt++ {
		svc, err := s.service(ctx, id)
		if err != nil {
			return svc, err
		}
		cur, ok := replicas(svc)
		if !ok {
			return svc, fmt.Errorf("scale service %s: %w", svc.Spec.Name, ErrNotReplicated)
		}
		n, change := want(svc, cur)
		if !change {
			return svc, nil
		}
		if cur > 0 {
			s.rememberAwake(svc.ID, cur)
		}
		spec := svc.Spec
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
		_, err = s.cli.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Version, Spec: spec})
		if err == nil {
			s.log.Debug("service scaled", "service", svc.Spec.Name, "from", cur, "to", n)
			return svc, nil
		}
		// The engine answers a stale version with "update out of sequence"
		// (an invalid argument); anything else is not a race.
		if !cerrdefs.IsInvalidArgument(err) || attempt == updateAttempts {
			return svc, fmt.Errorf("scale service %s from %d to %d: %w", svc.Spec.Name, cur, n, err)
		}
	}
}

// await polls the service's tasks until done says the count of running
// ones (and of all wanted ones) is what the caller waits for. When ctx
// ends first the error names the last task error the engine gave (an
// image it cannot find, a port already taken).
func (s *Swarm) await(ctx context.Context, svc swarm.Service, done func(running, wanted int) bool) error {
	delay := s.cfg.Poll
	lastErr := ""
	for {
		tasks, err := s.runningTasks(ctx, svc.ID)
		if err != nil {
			return err
		}
		running := 0
		for _, t := range tasks {
			if t.Status.State == swarm.TaskStateRunning {
				running++
			}
			if t.Status.Err != "" {
				lastErr = t.Status.Err
			}
		}
		if done(running, len(tasks)) {
			return nil
		}
		if lastErr == "" && delay >= 500*time.Millisecond {
			// Only once the wait is slow: a failed task is the likely reason.
			lastErr = s.lastTaskError(ctx, svc.ID)
		}
		select {
		case <-ctx.Done():
			if lastErr != "" {
				return fmt.Errorf("service %s: %w (last task error: %s)", svc.Spec.Name, context.Cause(ctx), lastErr)
			}
			return fmt.Errorf("service %s: %w", svc.Spec.Name, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// lastTaskError is the error of the service's most recent task that
// failed or was rejected ("No such image: …"): such a task is no longer
// desired running, so the wait's own list does not show it.
func (s *Swarm) lastTaskError(ctx context.Context, id string) string {
	res, err := s.cli.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", id)})
	if err != nil {
		return ""
	}
	var latest swarm.Task
	for _, t := range res.Items {
		if t.Status.Err != "" && t.Status.Timestamp.After(latest.Status.Timestamp) {
			latest = t
		}
	}
	return latest.Status.Err
}
