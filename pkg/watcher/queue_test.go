package watcher

import (
	"context"
	"testing"
)

// TestQueueDedupAndRequeue: a name queued many times is handed out once; a
// name that changes while a worker has it is not handed to a second worker
// but queued again when the first is done.
func TestQueueDedupAndRequeue(t *testing.T) {
	t.Parallel()
	q := newQueue()
	ctx := t.Context()
	q.add("a")
	q.add("a")
	q.add("b")
	if n := q.len(); n != 2 {
		t.Fatalf("len %d after a, a, b; want 2", n)
	}
	if got, _ := q.get(ctx); got != "a" {
		t.Fatalf("first get %q, want a", got)
	}
	q.add("a") // changed while a worker has it
	if got, _ := q.get(ctx); got != "b" {
		t.Fatalf("second get %q, want b (a is being worked on)", got)
	}
	if !q.has("a") {
		t.Fatal("a changed during its reconcile is not queued")
	}
	q.done("b")
	q.done("a")
	if got, _ := q.get(ctx); got != "a" {
		t.Fatalf("after done, get %q, want a again", got)
	}
	q.done("a")
	if q.len() != 0 || q.has("a") {
		t.Fatalf("queue not empty: len %d", q.len())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := q.get(cctx); ok {
		t.Fatal("get on an empty queue with an ended context returned a name")
	}
}
