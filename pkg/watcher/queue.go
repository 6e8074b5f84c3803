package watcher

import (
	"context"
	"sync"
)

// queue is a set of container names waiting to be reconciled. A name is in
// it at most once however many events arrive for it, and never handed to two
// workers at the same time: if it changes again while a worker has it, it is
// queued again when that worker is done.
type queue struct {
	mu         sync.Mutex
	pending    []string
	dirty      map[string]bool
	processing map[string]bool
	notify     chan struct{}
}

func newQueue() *queue {
	return &queue{
		dirty:      map[string]bool{},
		processing: map[string]bool{},
		notify:     make(chan struct{}, 1),
	}
}

func (q *queue) add(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dirty[name] {
		return
	}
	q.dirty[name] = true
	if !q.processing[name] {
		q.pending = append(q.pending, name)
		q.signal()
	}
}

func (q *queue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// get blocks until a name is ready or ctx ends.
func (q *queue) get(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 {
			name := q.pending[0]
			q.pending[0] = ""
			q.pending = q.pending[1:]
			delete(q.dirty, name)
			q.processing[name] = true
			if len(q.pending) > 0 {
				q.signal() // another worker may take the next one
			}
			q.mu.Unlock()
			return name, true
		}
		q.mu.Unlock()
		select {
		case <-q.notify:
		case <-ctx.Done():
			return "", false
		}
	}
}

func (q *queue) done(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, name)
	if q.dirty[name] {
		q.pending = append(q.pending, name)
		q.signal()
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) + len(q.processing)
}

// has reports whether name waits in the queue or is being worked on.
func (q *queue) has(name string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dirty[name] || q.processing[name]
}
