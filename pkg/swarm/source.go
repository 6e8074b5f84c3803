package swarm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"sleeper/pkg/watcher"
)

// taskServiceLabel is on every container the engine runs for a task: it
// names the task's service.
const taskServiceLabel = "com.docker.swarm.service.name"

// taskActions are the task container events that change whether a service
// runs. Service events are taken whole: there are only create, update and
// remove.
var taskActions = []string{"start", "die", "destroy", "health_status"}

// List implements watcher.Source: the labelled services and every task the
// orchestrator wants running, in two calls whatever the number of services.
func (s *Swarm) List(ctx context.Context) ([]watcher.Container, error) {
	began := time.Now()
	res, err := s.cli.ServiceList(ctx, client.ServiceListOptions{
		Filters: client.Filters{}.Add("label", s.cfg.Prefix+".enable"),
	})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	tasks, err := s.runningTasks(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]watcher.Container, 0, len(res.Items))
	for _, svc := range res.Items {
		// The engine filters by label; a proxy in between might not.
		if _, ok := svc.Spec.Labels[s.cfg.Prefix+".enable"]; !ok {
			continue
		}
		c := s.convert(ctx, svc, tasks)
		c.InspectedAt = began
		out = append(out, c)
	}
	return out, nil
}

// Events implements watcher.Source: the names of services that changed
// (service events) or whose tasks started or ended (their containers'
// events). Service events carry no labels, so every service's name comes
// through; the reconciler's inspect tells the labelled ones.
func (s *Swarm) Events(ctx context.Context) (<-chan string, <-chan error) {
	// The engine answers before it registers the listener; replaying from a
	// second ago closes that gap (duplicates are harmless to a reconciler).
	since := time.Now().Add(-time.Second)
	opts := func(f client.Filters) client.EventsListOptions {
		return client.EventsListOptions{Filters: f, Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())}
	}
	services := s.cli.Events(ctx, opts(client.Filters{}.Add("type", "service")))
	tasks := s.cli.Events(ctx, opts(client.Filters{}.
		Add("type", "container").Add("label", taskServiceLabel).Add("event", taskActions...)))
	names := make(chan string, 1024)
	errs := make(chan error, 1)
	// Each stream has its own drain, so neither waits on the other; the
	// first error is the stream's, and both end with ctx.
	var once sync.Once
	fail := func(err error) { once.Do(func() { errs <- err }) }
	drain := func(res client.EventsResult, name func(events.Message) string) {
		for {
			select {
			case m := <-res.Messages:
				if n := name(m); n != "" {
					select {
					case names <- n:
					case <-ctx.Done():
						fail(ctx.Err())
						return
					}
				}
			case err := <-res.Err:
				fail(err)
				return
			}
		}
	}
	go drain(services, func(m events.Message) string { return m.Actor.Attributes["name"] })
	go drain(tasks, func(m events.Message) string { return m.Actor.Attributes[taskServiceLabel] })
	go s.rechecks(ctx, names)
	return names, errs
}

// recheckAfter is how long a service seen between states waits before it
// is looked at again: the engine marks a task running a few hundred
// milliseconds after its container's start event.
const recheckAfter = 500 * time.Millisecond

// rechecks sends again, after recheckAfter, the names of services seen
// between states (convert), each once per period however often it was
// seen, until ctx ends. A service that stays between states (an image the
// engine cannot find) is thus looked at twice a second, no more.
func (s *Swarm) rechecks(ctx context.Context, names chan<- string) {
	due := map[string]time.Time{}
	tick := time.NewTicker(recheckAfter / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-s.recheck:
			if _, ok := due[n]; !ok {
				due[n] = time.Now().Add(recheckAfter)
			}
		case now := <-tick.C:
			for n, at := range due {
				if now.Before(at) {
					continue
				}
				delete(due, n)
				select {
				case names <- n:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// FindName implements watcher.Finder: the service named exactly name (the
// engine's inspect would also take an ID or an ID prefix).
func (s *Swarm) FindName(ctx context.Context, name string) (watcher.Container, error) {
	c, err := s.Inspect(ctx, name)
	if err != nil {
		return c, err
	}
	if c.Name != name {
		return watcher.Container{}, fmt.Errorf("find service %s: %w", name, watcher.ErrNotFound)
	}
	return c, nil
}

// FindService implements watcher.Finder: service of a stack, which docker
// stack deploy names <stack>_<service>.
func (s *Swarm) FindService(ctx context.Context, project, service string) (watcher.Container, error) {
	return s.FindName(ctx, project+"_"+service)
}
