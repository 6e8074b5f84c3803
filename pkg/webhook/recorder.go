package webhook

import (
	"sync"
	"time"

	"sleeper/pkg/watcher"
)

// Recorder is a watcher.Recorder that passes every call on to another
// recorder (the metrics) and turns wakes, sleeps and label errors into
// events. It only queues: it is called on the watcher's paths, often under
// its locks.
type Recorder struct {
	watcher.Recorder
	n *Notifier

	mu     sync.Mutex
	broken map[string]bool // containers whose labels are broken, to send config_error once
}

var _ watcher.Recorder = (*Recorder)(nil)

// NewRecorder returns a recorder that feeds n besides next.
func NewRecorder(next watcher.Recorder, n *Notifier) *Recorder {
	if next == nil {
		next = watcher.NopRecorder{}
	}
	return &Recorder{Recorder: next, n: n, broken: map[string]bool{}}
}

// Wake implements watcher.Recorder: woke on success, wake_failed on a
// timeout or an error; a wake cancelled by sleeper's shutdown is no event.
func (r *Recorder) Wake(container, result string, d time.Duration) {
	r.Recorder.Wake(container, result, d)
	ms := d.Milliseconds()
	switch result {
	case "success":
		r.n.Send(Payload{Event: EventWoke, Container: container, WakeMS: &ms})
	case "cancelled":
	default:
		r.n.Send(Payload{Event: EventWakeFailed, Container: container, Reason: result, WakeMS: &ms})
	}
}

// Sleep implements watcher.Recorder.
func (r *Recorder) Sleep(container, method, reason string) {
	r.Recorder.Sleep(container, method, reason)
	r.n.Send(Payload{Event: EventSlept, Container: container, Reason: reason, Method: method})
}

// ConfigError implements watcher.Recorder: config_error when a container's
// labels break, not again on every reconcile while they stay broken.
func (r *Recorder) ConfigError(container string, broken bool) {
	r.Recorder.ConfigError(container, broken)
	r.mu.Lock()
	was := r.broken[container]
	if broken {
		r.broken[container] = true
	} else {
		delete(r.broken, container)
	}
	r.mu.Unlock()
	if broken && !was {
		r.n.Send(Payload{Event: EventConfigError, Container: container})
	}
}

// Forget implements watcher.Recorder.
func (r *Recorder) Forget(container string) {
	r.Recorder.Forget(container)
	r.mu.Lock()
	delete(r.broken, container)
	r.mu.Unlock()
}
