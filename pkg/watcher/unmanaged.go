package watcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"sleeper/pkg/labels"
)

// unmanagedDeps is the bookkeeping of dependencies sleeper does not manage
// (no enable label): which dependents used each one, by container ID, which
// ones sleeper started, and the stops under way.
//
// Policy: sleeper stops only what it started, and only once no dependent
// that used it is awake; a container that was running already is left
// alone. Concurrent starts of one dependency are one start, under its own
// deadline. A stop that fails or is cancelled is retried with backoff under
// the registry's lifetime (or the container would run forever with nobody
// left to stop it); startedByUs is cleared only once a stop succeeded.
//
// Its mutex guards its maps only and is never held with the registry's or a
// watcher's: awake reads the lock-free routes.
type unmanagedDeps struct {
	log   *slog.Logger
	awake func(dependent string) bool // reads the routes snapshot
	// lifetime and wg are the registry's: retried stops run under the
	// registry's lifetime, and Registry.Close waits for them.
	lifetime context.Context
	wg       *sync.WaitGroup

	mu          sync.Mutex
	users       map[string]map[string]bool // dependency ID → dependent names
	rts         map[string]Runtime         // dependency ID → the runtime of its engine
	startedByUs map[string]bool
	stopping    map[string]chan struct{} // closed when that dependency's stop returns
	starts      singleflight.Group
}

func newUnmanagedDeps(lifetime context.Context, wg *sync.WaitGroup, log *slog.Logger, awake func(string) bool) *unmanagedDeps {
	return &unmanagedDeps{
		log: log, awake: awake, lifetime: lifetime, wg: wg,
		users:       map[string]map[string]bool{},
		rts:         map[string]Runtime{},
		startedByUs: map[string]bool{},
		stopping:    map[string]chan struct{}{},
	}
}

// use notes that dependent uses the dependency id and returns the channel
// of a stop of it under way, or nil. Noting the user and reading the stop
// in one section: a release that comes after either sees this dependent,
// one that came before has registered its stop.
func (u *unmanagedDeps) use(id, dependent string, rt Runtime) (stopping <-chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rts[id] = rt
	if u.users[id] == nil {
		u.users[id] = map[string]bool{}
	}
	u.users[id][dependent] = true
	if ch := u.stopping[id]; ch != nil {
		return ch
	}
	return nil
}

// start runs do once for every dependent that asks at once. The shared
// start runs under its own deadline, not the first caller's: one impatient
// dependent must not fail the start for the others. do reports whether it
// started the container, which makes it sleeper's to stop.
func (u *unmanagedDeps) start(ctx context.Context, id string, do func(context.Context) (started bool, err error)) error {
	_, err, _ := u.starts.Do(id, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		started, err := do(ctx)
		if started {
			u.mu.Lock()
			u.startedByUs[id] = true
			u.mu.Unlock()
		}
		return nil, err
	})
	return err
}

// usedBy returns the dependencies the dependent used.
func (u *unmanagedDeps) usedBy(dependent string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ids []string
	for id, users := range u.users {
		if users[dependent] {
			ids = append(ids, id)
		}
	}
	return ids
}

// usedLocked reports whether a dependent that used id is awake. Callers
// hold u.mu.
func (u *unmanagedDeps) usedLocked(id string) bool {
	for d := range u.users[id] {
		if u.awake(d) {
			return true
		}
	}
	return false
}

// stopUnused stops the dependency id if sleeper started it and no dependent
// that used it is awake; after names the dependent whose sleep asked, for
// the log. attempt counts the failed stops so far.
func (u *unmanagedDeps) stopUnused(ctx context.Context, id, after string, attempt int) {
	u.mu.Lock()
	if u.usedLocked(id) || !u.startedByUs[id] || u.stopping[id] != nil {
		// In use again (its users release it later), not ours to stop, or a
		// stop is already under way.
		u.mu.Unlock()
		return
	}
	delete(u.users, id) // nobody awake uses it; the next wake notes its users again
	done := make(chan struct{})
	u.stopping[id] = done
	rt := u.rts[id]
	u.mu.Unlock()

	err := rt.Stop(ctx, id, StopOptions{Timeout: labels.DefaultStopTimeout})
	if errors.Is(err, ErrNotFound) {
		err = nil // removed meanwhile: nothing left to stop
	}
	u.mu.Lock()
	delete(u.stopping, id)
	if err == nil {
		delete(u.startedByUs, id)
		delete(u.rts, id)
	}
	u.mu.Unlock()
	close(done)
	short := id[:min(12, len(id))]
	if err == nil {
		u.log.Info("unmanaged dependency stopped: its last dependent sleeps", "dependency", short, "after", after)
		return
	}
	delay := depStopRetry(attempt + 1)
	u.log.Error("stop unmanaged dependency; will retry", "dependency", short, "after", after,
		"error", err, "retry_in", delay.String())
	u.retryStop(id, after, attempt+1, delay)
}

// depStopRetry is how long to wait before the next try to stop an
// unmanaged dependency after failures failed stops: 1 s, doubling up to a
// minute.
func depStopRetry(failures int) time.Duration { return backoff(failures) }

// retryStop tries stopUnused again after delay, under the registry's
// lifetime: the dependent whose sleep asked for the stop may be gone.
func (u *unmanagedDeps) retryStop(id, after string, attempt int, delay time.Duration) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-u.lifetime.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(u.lifetime, time.Minute)
		defer cancel()
		u.stopUnused(ctx, id, after, attempt)
	}()
}
