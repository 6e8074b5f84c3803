package watcher

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"sleeper/pkg/healthcmd"
	"sleeper/pkg/labels"
)

// Readiness rule kinds, in the order of precedence docs/behaviour.md documents.
const (
	ReadyHTTP         = "http"              // sleeper.ready_path (2xx/3xx; the user's word wins), else any answer
	ReadyHealthURL    = "healthcheck-url"   // the health test fetches a URL: sleeper fetches it too
	ReadyHealthExec   = "healthcheck-exec"  // sleeper.health_exec: the test runs through exec
	ReadyHealthEvent  = "healthcheck-event" // only the engine's health_status event
	ReadyTCP          = "tcp"               // a listening socket, else a TCP dial the proxy does not hang up
	ReadyWhenRunning  = "running"           // nothing sleeper can probe
	defaultHCInterval = 30 * time.Second    // the engine's default health-check interval
)

// ErrUnhealthy is returned by a wake when the engine reports the container
// unhealthy before it was ever ready.
var ErrUnhealthy = errors.New("health check failed: the engine reports the container unhealthy")

// readiness is the rule that decides when a waking container is ready.
type readiness struct {
	kind  string
	path  string          // ready_path, for ReadyHTTP; "" means any answer
	check healthcmd.Check // for ReadyHealthURL
}

// String is the rule as /api/containers and the status page show it:
// "http /alive", "healthcheck-url http://localhost:8080/health", "tcp"…
func (r readiness) String() string {
	switch {
	case r.kind == ReadyHTTP && r.path != "":
		return r.kind + " " + r.path
	case r.kind == ReadyHealthURL:
		return r.kind + " " + r.check.URL.String()
	default:
		return r.kind
	}
}

// readinessFor picks the rule for container c with spec. canExec says
// whether the runtime can run commands in the container.
func readinessFor(c Container, spec *labels.Spec, canExec bool) readiness {
	switch {
	case spec.ReadyPath != "":
		return readiness{kind: ReadyHTTP, path: spec.ReadyPath}
	case c.Health != HealthNone || c.Check != nil:
		return healthRule(c, spec, canExec)
	case hasHTTP(spec):
		return readiness{kind: ReadyHTTP}
	case hasTCP(spec):
		return readiness{kind: ReadyTCP}
	default:
		return readiness{kind: ReadyWhenRunning}
	}
}

// healthRule is how sleeper follows c's health check: fetch its URL, run it
// through exec (opt-in), or wait for the engine.
func healthRule(c Container, spec *labels.Spec, canExec bool) readiness {
	if c.Check != nil {
		if chk, ok := healthcmd.Parse(c.Check.Test, c.Check.Env); ok && isSelf(chk.URL.Hostname(), c) {
			return readiness{kind: ReadyHealthURL, check: chk}
		}
		if spec.HealthExec && canExec {
			return readiness{kind: ReadyHealthExec}
		}
	}
	return readiness{kind: ReadyHealthEvent}
}

// isSelf reports whether a health test's URL host is the container itself:
// loopback, the wildcard address, its name, its compose service or one of
// its addresses. A test that checks another host says nothing sleeper can
// check at this container's address.
func isSelf(host string, c Container) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	switch host {
	case "localhost", "localhost.localdomain", "ip6-localhost", strings.ToLower(c.Name):
		return true
	}
	if svc := c.Service; svc != "" && strings.EqualFold(host, svc) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	for _, n := range c.Networks {
		if n.IP == ip.Unmap() {
			return true
		}
	}
	return false
}

// healthProbe returns the fast probe for rule r on c, or nil when only the
// engine's event can tell. Its cadence is the first delay and the cap.
func (w *Watcher) healthProbe(p *prober, c Container, spec *labels.Spec, r readiness) (func(context.Context) bool, time.Duration, time.Duration) {
	switch r.kind {
	case ReadyHealthURL:
		addr, err := checkAddr(r.check, c, spec.Network, w.selfNets)
		if err != nil {
			w.log.Info("health check URL not reachable from sleeper; waiting for the engine's health event",
				"url", r.check.URL.String(), "error", err)
			return nil, 0, 0
		}
		return p.check(r.check, addr), time.Millisecond, 10 * time.Millisecond
	case ReadyHealthExec:
		ex, _ := w.rt.(Execer)
		return w.execProbe(ex, c), 10 * time.Millisecond, 50 * time.Millisecond
	}
	return nil, 0, 0
}

// execTimeout bounds one exec of the health test: a hung test must not keep
// the next attempt (or the engine's own event) from counting.
const execTimeout = 10 * time.Second

// execProbe runs c's health test through the engine, as the engine would:
// an exec-form test as is, a CMD-SHELL one under /bin/sh -c.
func (w *Watcher) execProbe(ex Execer, c Container) func(context.Context) bool {
	var cmd []string
	switch t := c.Check.Test; {
	case len(t) >= 2 && t[0] == "CMD":
		cmd = t[1:]
	case len(t) == 2 && t[0] == "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", t[1]}
	default:
		return nil
	}
	var once sync.Once
	return func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, execTimeout)
		defer cancel()
		code, err := ex.Exec(ctx, c.ID, cmd)
		if err != nil && ctx.Err() == nil {
			once.Do(func() {
				w.log.Warn("cannot run the health test through the engine's exec API; waiting for the engine's health event (does the socket proxy allow EXEC?)",
					"error", err)
			})
		}
		return err == nil && code == 0
	}
}

// awaitHealth waits until c's health test passes: probe (when not nil)
// succeeding, or an engine health_status: healthy of this run, whichever
// comes first. It fails when the run dies, or when the engine reports it
// unhealthy after it was starting (an unhealthy status already there at
// the start is the engine's stale view of a paused container, not news).
func (w *Watcher) awaitHealth(ctx context.Context, c Container, probe func(context.Context) bool, first, maxDelay time.Duration) error {
	if c.Health == HealthHealthy {
		return nil
	}
	failUnhealthy := c.Health != HealthUnhealthy
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	passed := make(chan struct{})
	if probe != nil {
		wg.Go(func() {
			if pollUntil(ctx, probe, first, maxDelay) {
				close(passed)
			}
		})
	}
	wg.Go(func() { w.reinspect(ctx, c.ID) })
	for {
		w.mu.Lock()
		o, changed := w.observed, w.changed
		w.mu.Unlock()
		if o.ID == c.ID && o.StartedAt.Equal(c.StartedAt) {
			if o.Health == HealthHealthy && o.Awake() {
				return nil
			}
			if err := w.runDied(c.ID, c.StartedAt); err != nil {
				return err
			}
			if failUnhealthy && o.Health == HealthUnhealthy {
				return ErrUnhealthy
			}
		}
		select {
		case <-passed:
			w.mu.Lock()
			w.healthPassed = runKey{id: c.ID, started: c.StartedAt}
			w.mu.Unlock()
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-changed:
		}
	}
}

// healthReinspect is how often a health wait inspects the container itself.
// Events alone are not enough: Podman emits no health event when its health
// timers are off, an engine's event may be lost between a stream's break and
// its relist, and the periodic relist is a minute away.
const healthReinspect = 500 * time.Millisecond

// reinspect feeds the watcher a fresh inspect of id every healthReinspect
// until ctx ends, so a health wait sees the engine's verdict with or without
// its event. A failed inspect is left to the next tick and the reconciler.
func (w *Watcher) reinspect(ctx context.Context, id string) {
	t := time.NewTicker(healthReinspect)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c, err := w.rt.Inspect(ctx, id); err == nil {
			w.Observe(c)
		}
	}
}

// runKey names one run of a container.
type runKey struct {
	id      string
	started time.Time
}

// pollUntil runs probe until it passes or ctx ends, first after first and
// then doubling up to maxDelay between attempts.
func pollUntil(ctx context.Context, probe func(context.Context) bool, first, maxDelay time.Duration) bool {
	delay := first
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		if probe(ctx) {
			return true
		}
		t.Reset(delay)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		delay = min(delay*2, maxDelay)
	}
}

// AwaitHealthy waits until the running container's health test passes, for
// a ":healthy" dependency: at once when the wake already saw it pass or the
// engine says healthy, else by the same fast path a wake uses (ready_path
// does not stand in for the health check here).
func (w *Watcher) AwaitHealthy(ctx context.Context) error {
	w.mu.Lock()
	o, passed := w.observed, w.healthPassed
	w.mu.Unlock()
	if o.Health == HealthNone {
		return ErrNoHealthCheck
	}
	if o.Health == HealthHealthy || passed == (runKey{id: o.ID, started: o.StartedAt}) {
		return nil
	}
	_, canExec := w.rt.(Execer)
	p := newProber()
	defer p.close()
	probe, first, maxDelay := w.healthProbe(p, o, w.spec.Load(), healthRule(o, w.spec.Load(), canExec))
	return w.awaitHealth(ctx, o, probe, first, maxDelay)
}

// ErrNoHealthCheck is returned for a ":healthy" dependency without one.
var ErrNoHealthCheck = errors.New("has no health check (remove :healthy or add a HEALTHCHECK)")

// unmanagedHealthProbe returns a fast probe of c's health URL for a
// dependency sleeper does not manage, or nil when its test names none.
func unmanagedHealthProbe(p *prober, c Container, self []string) func(context.Context) bool {
	if c.Check == nil {
		return nil
	}
	chk, ok := healthcmd.Parse(c.Check.Test, c.Check.Env)
	if !ok || !isSelf(chk.URL.Hostname(), c) {
		return nil
	}
	addr, err := checkAddr(chk, c, "", self)
	if err != nil {
		return nil
	}
	return p.check(chk, addr)
}

// checkAddr is where sleeper dials a health URL's port of c.
func checkAddr(chk healthcmd.Check, c Container, network string, self []string) (string, error) {
	port := chk.URL.Port()
	switch {
	case port != "":
	case chk.URL.Scheme == "https":
		port = "443"
	default:
		port = "80"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("health check URL %s: bad port", chk.URL)
	}
	return ResolveAddr(c, uint16(n), "tcp", network, self)
}
