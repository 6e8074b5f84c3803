package watcher

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultEngineDownAfter is how long the engine may be unreachable before
// EngineHealth reports sleeper unhealthy. Short outages (an engine restart, a socket
// proxy redeployed) are ridden out by the reconnect loop and must not make an
// orchestrator restart sleeper; a minute is well past those and still soon
// enough for an operator to be told.
const DefaultEngineDownAfter = time.Minute

// Errors EngineHealth.Check wraps, so callers can tell the cases apart.
var (
	// ErrEngineWaiting: the engine has not answered since sleeper started.
	ErrEngineWaiting = errors.New("waiting for the engine")
	// ErrDiscovering: the engine answers, the first full list is not done.
	ErrDiscovering = errors.New("discovering containers")
	// ErrEngineDown: the engine has been unreachable for longer than DownAfter.
	ErrEngineDown = errors.New("engine unreachable")
)

// EngineHealthConfig builds an EngineHealth.
type EngineHealthConfig struct {
	// Engine names the engine in Check's messages, as in "waiting for the
	// <Engine>"; "engine" when empty. The provider knows its name.
	Engine string
	// DownAfter is how long the engine may be unreachable before Check
	// fails; DefaultEngineDownAfter when zero.
	DownAfter time.Duration
	// OnChange is told each time the engine becomes reachable or not (the
	// sleeper_docker_up gauge). It is called without the lock held, in
	// order. May be nil.
	OnChange func(up bool)
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// EngineHealth is sleeper's own readiness: the engine has answered, the first full
// list has been reconciled, and the engine has not been unreachable for
// longer than DownAfter. Whoever talks to the engine reports to it (the
// startup wait in main, the Reconciler); the admin /healthz reads it. A nil
// *EngineHealth ignores reports, so reporting is optional.
type EngineHealth struct {
	cfg EngineHealthConfig

	mu        sync.Mutex
	notify    sync.Mutex // keeps OnChange calls in the order of the changes
	reached   bool       // the engine has answered at least once
	up        bool
	downSince time.Time
	lastErr   error
	synced    bool
}

// NewEngineHealth returns an EngineHealth that has not seen the engine yet.
func NewEngineHealth(cfg EngineHealthConfig) *EngineHealth {
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = DefaultEngineDownAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Engine == "" {
		cfg.Engine = "engine"
	}
	return &EngineHealth{cfg: cfg}
}

// EngineUp records that the engine answered.
func (h *EngineHealth) EngineUp() {
	if h == nil {
		return
	}
	h.set(true, nil)
}

// EngineDown records that the engine could not be reached, and why.
func (h *EngineHealth) EngineDown(err error) {
	if h == nil {
		return
	}
	h.set(false, err)
}

func (h *EngineHealth) set(up bool, err error) {
	h.notify.Lock()
	defer h.notify.Unlock()
	h.mu.Lock()
	changed := up != h.up
	if up {
		h.reached, h.downSince, h.lastErr = true, time.Time{}, nil
	} else {
		if h.downSince.IsZero() {
			h.downSince = h.cfg.Now() // the first failure since the last success
		}
		h.lastErr = err
	}
	h.up = up
	h.mu.Unlock()
	if changed && h.cfg.OnChange != nil {
		h.cfg.OnChange(up)
	}
}

// Synced records that the first full list has been reconciled.
func (h *EngineHealth) Synced() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced = true
}

// Up reports whether the engine answered last time it was asked.
func (h *EngineHealth) Up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// LastError returns why the engine could not be reached last time, or nil.
func (h *EngineHealth) LastError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

// Name returns the engine's name as Check's messages give it.
func (h *EngineHealth) Name() string { return h.cfg.Engine }

// Check returns nil when sleeper is healthy, else why not (wrapping
// ErrEngineWaiting, ErrDiscovering or ErrEngineDown).
func (h *EngineHealth) Check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.reached:
		return withCause(namedError{ErrEngineWaiting, "waiting for the " + h.cfg.Engine}, h.lastErr)
	case !h.synced:
		return ErrDiscovering
	case !h.up:
		down := h.cfg.Now().Sub(h.downSince)
		if down <= h.cfg.DownAfter {
			return nil // a short outage the reconnect loop rides out
		}
		named := namedError{ErrEngineDown, h.cfg.Engine + " unreachable"}
		return withCause(fmt.Errorf("%w for %s", named, down.Round(time.Second)), h.lastErr)
	}
	return nil
}

// namedError is a sentinel told in the engine's own name: it reads msg
// and is the sentinel for errors.Is.
type namedError struct {
	sentinel error
	msg      string
}

func (e namedError) Error() string { return e.msg }
func (e namedError) Unwrap() error { return e.sentinel }

func withCause(err, cause error) error {
	if cause == nil {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}
