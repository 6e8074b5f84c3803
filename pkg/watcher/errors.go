package watcher

import (
	"errors"
	"fmt"
)

// Sentinel errors of the front doors. They are not failures of a wake but
// refusals to wait for one; Answer maps them like the wake's own errors so
// that every front door refuses alike.
var (
	// ErrTooManyHeld means more than --max-held clients already wait for
	// the container's wake.
	ErrTooManyHeld = errors.New("too many clients waiting")
	// ErrWakeRefused means the request may not wake the container (its
	// path is not in sleeper.wake_paths) and the container is not ready.
	ErrWakeRefused = errors.New("request may not wake the container")
	// ErrUnreachable means the container is ready but its app could not be
	// reached or did not answer. Wrap the transport's error with it.
	ErrUnreachable = errors.New("app not reachable")
)

// ExitError is a container that exited while it was being woken.
type ExitError struct {
	Code int
	// Detail is the engine's error for the exit ("" when there is none):
	// it can name paths and runtimes, so it goes to the log, not to clients.
	Detail string
}

func (e *ExitError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("container exited with code %d: %s", e.Code, e.Detail)
	}
	return fmt.Sprintf("container exited with code %d", e.Code)
}

// DependencyError is a wake that failed because one of the container's
// sleeper.depends_on entries could not be made ready.
type DependencyError struct {
	Name string // the dependency as depends_on names it
	Err  error
}

func (e *DependencyError) Error() string {
	if errors.Is(e.Err, ErrDependencyNotFound) {
		return fmt.Sprintf("dependency %s not found", e.Name)
	}
	return fmt.Sprintf("dependency %s: %v", e.Name, e.Err)
}

func (e *DependencyError) Unwrap() error { return e.Err }

// SleepError is a sleep that did not finish: the stop, pause or kill
// failed, or the caller's context ended first.
type SleepError struct {
	Container string
	Err       error
}

func (e *SleepError) Error() string { return fmt.Sprintf("sleep %s: %v", e.Container, e.Err) }

func (e *SleepError) Unwrap() error { return e.Err }
