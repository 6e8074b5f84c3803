package watcher

import "time"

// Recorder receives what watchers do, for metrics. Implementations must be
// safe for concurrent use and cheap: Request and Activity sit on the hot path.
type Recorder interface {
	// Wake records a finished wake; result is "success", "timeout", "error"
	// or "cancelled" (sleeper shut down during the wake).
	Wake(container, result string, d time.Duration)
	// Sleep records a container put to sleep; reason is "idle", "api" or "external".
	Sleep(container, method, reason string)
	// State records a state change.
	State(container string, from, to State)
	// Held records the number of requests waiting for a wake.
	Held(container string, n int)
	// Request records the outcome of one request ("proxied", "held", …).
	Request(container, outcome string)
	// ConfigError records whether a container's labels are broken.
	ConfigError(container string, broken bool)
	// Forget drops every series of a container that is gone.
	Forget(container string)
}

// NopRecorder records nothing.
type NopRecorder struct{}

var _ Recorder = NopRecorder{}

// Wake implements Recorder.
func (NopRecorder) Wake(string, string, time.Duration) {}

// Sleep implements Recorder.
func (NopRecorder) Sleep(string, string, string) {}

// State implements Recorder.
func (NopRecorder) State(string, State, State) {}

// Held implements Recorder.
func (NopRecorder) Held(string, int) {}

// Request implements Recorder.
func (NopRecorder) Request(string, string) {}

// ConfigError implements Recorder.
func (NopRecorder) ConfigError(string, bool) {}

// Forget implements Recorder.
func (NopRecorder) Forget(string) {}
