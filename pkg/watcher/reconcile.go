package watcher

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"sleeper/pkg/labels"
)

// ReconcilerConfig builds a Reconciler.
type ReconcilerConfig struct {
	Source   Source
	Registry *Registry
	Log      *slog.Logger
	Prefix   string        // label prefix, for the enable check
	Workers  int           // parallel inspects; 16 when zero
	Resync   time.Duration // full relist period; 1m when zero
	// OnReconnect is called each time the event stream is re-established
	// after a loss (for the reconnect metric). May be nil.
	OnReconnect func()
	// Engine names the source in log messages, as in "<Engine> event
	// stream lost"; "engine" when empty.
	Engine string
	// Health is told whether the engine answers and when the first full
	// list is done (for /healthz and sleeper_docker_up). May be nil.
	Health *EngineHealth
	// EngineName names the Source among several engines feeding one
	// Registry: it is stamped into every Container.Engine, and only the
	// registry's containers of that engine are this reconciler's. "" is
	// the registry's default engine.
	EngineName string
}

// Reconciler keeps the Registry in step with the engine. Events only queue a
// container name; reconcile inspects the container and converges, so missed,
// repeated or reordered events do no harm. The stream is reconnected forever
// with capped backoff, and every (re)connect is followed by a full relist.
type Reconciler struct {
	cfg      ReconcilerConfig
	log      *slog.Logger
	q        *queue
	syncOnce sync.Once
	listed   chan struct{} // closed after the first list that was inspected and applied in full
	synced   chan struct{}
}

// NewReconciler returns a reconciler; Run starts it.
func NewReconciler(cfg ReconcilerConfig) *Reconciler {
	if cfg.Workers <= 0 {
		// The engine answers inspects in parallel: discovery of a thousand
		// containers is bound by round trips, not by CPU.
		cfg.Workers = 16
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	return &Reconciler{cfg: cfg, log: cfg.Log, q: newQueue(), listed: make(chan struct{}), synced: make(chan struct{})}
}

// Synced is closed once the first full list has been reconciled.
func (r *Reconciler) Synced() <-chan struct{} { return r.synced }

// Run reconciles until ctx ends. It returns nil on cancellation: losing the
// engine is never fatal, it is retried.
func (r *Reconciler) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for range r.cfg.Workers {
		g.Go(func() error {
			for {
				name, ok := r.q.get(ctx)
				if !ok {
					return nil
				}
				r.reconcile(ctx, name)
				r.q.done(name)
			}
		})
	}
	g.Go(func() error {
		r.watch(ctx)
		return nil
	})
	g.Go(func() error {
		r.markSynced(ctx)
		return nil
	})
	return g.Wait()
}

// watch subscribes, relists and drains events into the queue, forever.
func (r *Reconciler) watch(ctx context.Context) {
	delay := 100 * time.Millisecond
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(delay*2, 5*time.Second)
		}
		connected, err := r.session(ctx, attempt > 0)
		if ctx.Err() != nil {
			return
		}
		if connected {
			delay = 100 * time.Millisecond
		}
		r.log.Warn(r.engine()+" event stream lost, reconnecting", "error", err, "retry_in", delay.String())
	}
}

// session runs one event subscription: subscribe first, then list, so that
// nothing that happens in between is missed. It returns when the stream
// breaks; connected reports whether the list succeeded.
func (r *Reconciler) session(parent context.Context, reconnect bool) (connected bool, err error) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the relist below ends with the session
	defer cancel()
	events, errs := r.cfg.Source.Events(ctx)
	began := time.Now()
	listed, err := r.cfg.Source.List(ctx)
	if err != nil {
		if parent.Err() == nil {
			r.cfg.Health.EngineDown(err)
		}
		return false, err
	}
	r.cfg.Health.EngineUp()
	if reconnect && r.cfg.OnReconnect != nil {
		r.cfg.OnReconnect()
	}
	r.log.Info(r.engine()+" containers listed", "labelled", len(listed))
	// The relist runs beside the event loop, which must keep draining the
	// stream meanwhile.
	wg.Go(func() {
		// A relist cut short by a broken stream is not a list: the next
		// session's relist is, and only then may sleeper say it is synced.
		if r.relist(ctx, listed, began) {
			r.syncOnce.Do(func() { close(r.listed) })
		}
	})
	resync := time.NewTicker(r.cfg.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case name := <-events:
			r.q.add(name)
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return true, err
		case <-resync.C:
			began := time.Now()
			listed, err := r.cfg.Source.List(ctx)
			if err != nil {
				r.cfg.Health.EngineDown(err)
				return true, err
			}
			r.cfg.Health.EngineUp()
			r.relist(ctx, listed, began)
		}
	}
}

// relist applies one list to the registry in one batch: one rebuild of the
// routes for a thousand containers, not a thousand, and no inspect at all.
// A known name the list lacks is queued: only an inspect tells a container
// that is gone from one that lost its label or was renamed (a container
// removed during an outage is found that way). began is when the list call
// began: an observation applied after it is newer and is kept. It reports
// whether the batch was applied; when ctx ends first, every name is queued
// instead, so that none is forgotten.
func (r *Reconciler) relist(ctx context.Context, listed []Container, began time.Time) bool {
	seen := make(map[string]bool, len(listed))
	apply := make([]Container, 0, len(listed))
	for _, c := range listed {
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		c.Engine = r.cfg.EngineName
		if !labels.Enabled(c.Labels, r.cfg.Prefix) {
			r.cfg.Registry.RemoveIfOlder(r.key(c.Name), began)
			continue
		}
		apply = append(apply, c)
	}
	for _, n := range r.cfg.Registry.NamesOn(r.cfg.EngineName) {
		if !seen[n] {
			r.q.add(n)
		}
	}
	if ctx.Err() != nil {
		for n := range seen {
			r.q.add(n)
		}
		return false
	}
	r.cfg.Registry.ApplyAll(apply)
	for _, c := range apply {
		r.cfg.Registry.ObserveStub(ctx, r.key(c.Name))
	}
	return true
}

// key is the registry key of this engine's container name.
func (r *Reconciler) key(name string) string { return Key(r.cfg.EngineName, name) }

// engine names the source in log messages.
func (r *Reconciler) engine() string { return cmp.Or(r.cfg.Engine, "engine") }

// markSynced closes Synced once the queue has drained after the first list.
func (r *Reconciler) markSynced(ctx context.Context) {
	select {
	case <-r.listed:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for r.q.len() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	close(r.synced)
	r.cfg.Health.Synced()
}

// reconcile converges the registry to the container's inspected state.
func (r *Reconciler) reconcile(ctx context.Context, name string) {
	c, err := r.cfg.Source.Inspect(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		r.cfg.Registry.Remove(r.key(name))
		return
	case err != nil:
		// The engine is unreachable: the stream breaks too, and the relist
		// after reconnecting queues this name again.
		if ctx.Err() == nil {
			r.log.Warn("inspect failed", "container", r.key(name), "error", err)
		}
		return
	}
	if c.Name != name || !labels.Enabled(c.Labels, r.cfg.Prefix) {
		// Renamed away, or the enable label is gone.
		r.cfg.Registry.Remove(r.key(name))
		if c.Name != name {
			r.q.add(c.Name)
		}
		return
	}
	c.Engine = r.cfg.EngineName
	r.cfg.Registry.Apply(c)
	r.cfg.Registry.ObserveStub(ctx, r.key(name))
}

// Enqueue asks for a container to be reconciled, for sources of change other
// than Docker events (the Proxmox poller). It takes a registry key (see
// Key) and ignores one of another engine.
func (r *Reconciler) Enqueue(key string) {
	if engine, name := SplitKey(key); engine == r.cfg.EngineName {
		r.q.add(name)
	}
}
