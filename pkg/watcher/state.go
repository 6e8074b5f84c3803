package watcher

import (
	"errors"
	"fmt"
	"time"
)

// State is where a watcher stands in its sleep/wake cycle.
type State int32

// Watcher states. The zero value is StateAsleep so a fresh watcher never
// claims to be ready before it has observed its container.
const (
	StateAsleep   State = iota // stopped, paused or never started
	StateWaking                // a wake is in progress
	StateReady                 // running and answering: requests go straight through
	StateStopping              // going to sleep
	StateError                 // the last wake failed; the next request retries
)

var stateNames = [...]string{"asleep", "waking", "ready", "stopping", "error"}

// String returns the state's wire name ("asleep", "ready", …).
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int32(s))
	}
	return stateNames[s]
}

// States lists every state, in order, for metrics that export one series each.
func States() []State {
	return []State{StateAsleep, StateWaking, StateReady, StateStopping, StateError}
}

// Sentinel errors of a wake. Proxies map them to status codes.
var (
	// ErrWakeTimeout means the wake took longer than wake_timeout.
	ErrWakeTimeout = errors.New("wake timed out")
	// ErrClosed means the watcher was removed while a client waited.
	ErrClosed = errors.New("watcher closed")
	// ErrNotReady means the container could not be made ready within the
	// client's patience even though the wake itself did not fail.
	ErrNotReady = errors.New("not ready")
)

// WakeError is a failed wake: the container name and why.
type WakeError struct {
	Container string
	Err       error
}

func (e *WakeError) Error() string { return fmt.Sprintf("wake %s: %v", e.Container, e.Err) }

func (e *WakeError) Unwrap() error { return e.Err }

// EventType names a step of a wake, as shown on the loading page.
type EventType string

// Wake progress events, in the order they normally happen.
const (
	EventWaking           EventType = "waking"
	EventDependencyWaking EventType = "dependency_waking"
	EventDependencyReady  EventType = "dependency_ready"
	EventStarted          EventType = "started"
	EventWaitingReady     EventType = "waiting_ready"
	EventReady            EventType = "ready"
	EventError            EventType = "error"
)

// Event is one step of a wake.
type Event struct {
	Type    EventType
	Time    time.Time
	Message string
}
