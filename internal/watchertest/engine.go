// Package watchertest is sleeper's shared test kit: one configurable fake
// engine (a watcher.Runtime, watcher.Source and watcher.Finder over any
// number of containers) and an app server to put behind a container. The
// tests of pkg/proxy, pkg/stream, pkg/admin and pkg/watcher's external tests
// (package watcher_test) use it instead of a fake of their own.
//
// Why here and in this shape: the kit must import pkg/watcher for its types,
// so pkg/watcher's in-package tests (package watcher) cannot import it
// without an import cycle, and _test.go files cannot be imported at all.
// So the kit is an internal package; tests of pkg/watcher that need only its
// exported API are external tests using it, and the in-package ones (which
// reach unexported state: the queue, the prober) keep pkg/watcher's one small
// fake. The one polling helper, Eventually, lives in internal/await, which
// imports nothing of sleeper, so that every test, in-package ones included,
// shares it.
//
// The engine's behaviour per container is set with Behave: a gate that holds
// Start, a start or stop error, a container that exits as soon as it starts.
// Its Source side lists every container, serves events that tests Emit, and
// can fail lists and break event streams to exercise reconnects.
package watchertest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"sleeper/pkg/watcher"
)

// Behaviour says how the engine answers for one container. The zero value
// starts and stops at once.
type Behaviour struct {
	// Gate, when not nil, holds Start until it is closed or ctx ends: a slow wake.
	Gate chan struct{}
	// StartErr is returned by Start, as an engine that refuses would.
	StartErr error
	// StopErr is returned by Stop.
	StopErr error
	// ExitOnStart makes the container die (exit code 3) right after it
	// started; the engine's observer is told, as the reconciler would.
	ExitOnStart bool
}

// Engine is an in-memory engine. Every method is safe for concurrent use.
type Engine struct {
	mu        sync.Mutex
	byName    map[string]watcher.Container
	behave    map[string]Behaviour
	calls     map[string]int // "op" and "op name"
	observe   func(watcher.Container)
	subs      []subscription
	listErrs  []error // returned by the next lists, in order
	listHold  chan struct{}
	listCalls int
	prefixes  bool // resolve unique ID prefixes, as Docker's API does
}

type subscription struct {
	names chan string
	errs  chan error
}

var (
	_ watcher.Runtime = (*Engine)(nil)
	_ watcher.Source  = (*Engine)(nil)
	_ watcher.Finder  = (*Engine)(nil)
)

// NewEngine returns an engine holding cs.
func NewEngine(cs ...watcher.Container) *Engine {
	e := &Engine{byName: map[string]watcher.Container{}, behave: map[string]Behaviour{}, calls: map[string]int{}}
	for _, c := range cs {
		e.Set(c)
	}
	return e
}

// Set adds or replaces a container (keyed by name, as a recreate keeps it).
// Like the Docker provider, it reads the compose project and service from
// the compose labels when the container does not carry them already.
func (e *Engine) Set(c watcher.Container) {
	if c.Project == "" && c.Service == "" {
		c.Project, c.Service = c.Labels[composeProject], c.Labels[composeService]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byName[c.Name] = c
}

// The labels a compose project and service are read from.
const (
	composeProject = "com.docker.compose.project"
	composeService = "com.docker.compose.service"
)

// Delete removes a container.
func (e *Engine) Delete(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byName, name)
}

// Update changes a container in place.
func (e *Engine) Update(ref string, f func(*watcher.Container)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n, ok := e.nameLocked(ref); ok {
		c := e.byName[n]
		f(&c)
		e.byName[n] = c
	}
}

// Behave sets how the engine answers for the named container.
func (e *Engine) Behave(name string, b Behaviour) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.behave[name] = b
}

// Observe sets who is told of a container's death after ExitOnStart: the
// watcher's Observe in a test without a reconciler.
func (e *Engine) Observe(f func(watcher.Container)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observe = f
}

// Container returns the named container's current state.
func (e *Engine) Container(ref string) watcher.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, _ := e.nameLocked(ref)
	return e.byName[n]
}

// Calls counts the calls of op ("start", "stop", "kill", "pause",
// "unpause", "inspect", "findname", "findservice") for one container, or for
// all when ref is "".
func (e *Engine) Calls(op, ref string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ref == "" {
		return e.calls[op]
	}
	n, _ := e.nameLocked(ref)
	return e.calls[op+" "+n]
}

// ResolveIDPrefixes makes every reference also match a unique prefix of a
// container's ID, after exact names and IDs, as Docker's API does: for
// tests that prove sleeper never relies on that (a depends_on name must not
// start a container whose ID merely begins with it).
func (e *Engine) ResolveIDPrefixes() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prefixes = true
}

func (e *Engine) nameLocked(ref string) (string, bool) {
	if _, ok := e.byName[ref]; ok {
		return ref, true
	}
	for n, c := range e.byName {
		if c.ID == ref {
			return n, true
		}
	}
	if !e.prefixes || ref == "" {
		return "", false
	}
	var found []string
	for n, c := range e.byName {
		if strings.HasPrefix(c.ID, ref) {
			found = append(found, n)
		}
	}
	if len(found) != 1 {
		return "", false // none, or ambiguous (Docker: "multiple IDs found")
	}
	return found[0], true
}

func (e *Engine) countLocked(op, name string) {
	e.calls[op]++
	e.calls[op+" "+name]++
}

// Inspect returns a container by name or ID, stamped with when it began.
func (e *Engine) Inspect(_ context.Context, ref string) (watcher.Container, error) {
	began := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.nameLocked(ref)
	e.countLocked("inspect", n)
	if !ok {
		return watcher.Container{}, watcher.ErrNotFound
	}
	c := e.byName[n]
	c.InspectedAt = began
	return c, nil
}

// FindName returns the container named exactly name.
func (e *Engine) FindName(_ context.Context, name string) (watcher.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.countLocked("findname", name)
	c, ok := e.byName[name]
	if !ok {
		return watcher.Container{}, watcher.ErrNotFound
	}
	return c, nil
}

// FindService returns the container of a compose project's service.
func (e *Engine) FindService(_ context.Context, project, service string) (watcher.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.countLocked("findservice", project+"/"+service)
	for _, n := range slices.Sorted(maps.Keys(e.byName)) {
		c := e.byName[n]
		if c.Project == project && c.Service == service {
			return c, nil
		}
	}
	return watcher.Container{}, watcher.ErrNotFound
}

// Start starts a container as its Behaviour says.
func (e *Engine) Start(ctx context.Context, ref string) error {
	e.mu.Lock()
	n, ok := e.nameLocked(ref)
	e.countLocked("start", n)
	b := e.behave[n]
	e.mu.Unlock()
	if !ok {
		return watcher.ErrNotFound
	}
	if b.Gate != nil {
		select {
		case <-b.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if b.StartErr != nil {
		return b.StartErr
	}
	e.mu.Lock()
	c := e.byName[n]
	c.Status, c.StartedAt = watcher.StatusRunning, time.Now()
	if b.ExitOnStart {
		c.Status, c.ExitCode, c.FinishedAt = watcher.StatusStopped, 3, time.Now()
	}
	e.byName[n] = c
	observe := e.observe
	e.mu.Unlock()
	if b.ExitOnStart && observe != nil {
		// After Start has returned, as the engine's die event would come:
		// the watcher drops an observation older than its own start.
		time.AfterFunc(20*time.Millisecond, func() { observe(c) })
	}
	return nil
}

func (e *Engine) set(op, ref string, status watcher.Status, fail func(Behaviour) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.nameLocked(ref)
	e.countLocked(op, n)
	if !ok {
		return watcher.ErrNotFound
	}
	if err := fail(e.behave[n]); err != nil {
		return err
	}
	c := e.byName[n]
	if c.Status != watcher.StatusPaused && status != watcher.StatusPaused && status != watcher.StatusRunning {
		c.FinishedAt = time.Now()
	}
	c.Status = status
	e.byName[n] = c
	return nil
}

func noFailure(Behaviour) error { return nil }

// Stop stops a container, or fails with its StopErr.
func (e *Engine) Stop(_ context.Context, ref string, _ watcher.StopOptions) error {
	return e.set("stop", ref, watcher.StatusStopped, func(b Behaviour) error { return b.StopErr })
}

// Kill stops a container at once.
func (e *Engine) Kill(_ context.Context, ref, _ string) error {
	return e.set("kill", ref, watcher.StatusStopped, noFailure)
}

// Pause freezes a container.
func (e *Engine) Pause(_ context.Context, ref string) error {
	return e.set("pause", ref, watcher.StatusPaused, noFailure)
}

// Unpause thaws a container.
func (e *Engine) Unpause(_ context.Context, ref string) error {
	return e.set("unpause", ref, watcher.StatusRunning, noFailure)
}

// FailLists makes the next lists fail with errs, one each, in order.
func (e *Engine) FailLists(errs ...error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listErrs = append(e.listErrs, errs...)
}

// HoldLists makes every list wait until release is closed (or its ctx ends);
// nil lets lists answer at once again.
func (e *Engine) HoldLists(release chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listHold = release
}

// Lists counts the calls of List.
func (e *Engine) Lists() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listCalls
}

// List returns every container, sorted by name, as the engine's list gives
// them (Listed set).
func (e *Engine) List(ctx context.Context) ([]watcher.Container, error) {
	e.mu.Lock()
	e.listCalls++
	hold := e.listHold
	var err error
	if len(e.listErrs) > 0 {
		err, e.listErrs = e.listErrs[0], e.listErrs[1:]
	}
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]watcher.Container, 0, len(e.byName))
	for _, n := range slices.Sorted(maps.Keys(e.byName)) {
		c := e.byName[n]
		c.Listed = true
		out = append(out, c)
	}
	return out, nil
}

// Events subscribes to the names tests Emit. The subscription ends when ctx
// ends or Break is called.
func (e *Engine) Events(ctx context.Context) (<-chan string, <-chan error) {
	s := subscription{names: make(chan string, 64), errs: make(chan error, 1)}
	e.mu.Lock()
	e.subs = append(e.subs, s)
	e.mu.Unlock()
	context.AfterFunc(ctx, func() { e.drop(s) })
	return s.names, s.errs
}

func (e *Engine) drop(s subscription) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.subs = slices.DeleteFunc(e.subs, func(o subscription) bool { return o.names == s.names })
}

// Subscribers counts the live event subscriptions.
func (e *Engine) Subscribers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

// Emit sends a container name to every subscriber.
func (e *Engine) Emit(names ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		for _, n := range names {
			s.names <- n
		}
	}
}

// Break ends every subscription with err (nil: the stream just closed).
func (e *Engine) Break(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		if err == nil {
			close(s.errs)
			continue
		}
		s.errs <- err
	}
	e.subs = nil
}

// ErrEngineGone is what a broken engine answers, for tests that need one.
var ErrEngineGone = errors.New("engine went away")
