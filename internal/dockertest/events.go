package dockertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Starts counts the engine's start events for one container from now on, so a test
// can assert that a wake started the container exactly once. count is safe to call
// from any goroutine; it returns -1 if the event stream broke, which fails any
// assertion on an expected count rather than silently undercounting. stop ends the
// subscription and waits for its goroutine; the subscription also ends with ctx.
//
// Events arrive shortly after the state change: poll count with a deadline.
func Starts(ctx context.Context, cli *client.Client, id string) (count func() int, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	// The engine answers the events request before it registers the listener, so a
	// start in between would be missed. "since" closes that gap: the engine replays
	// its buffered events from that moment and streams the rest, without duplicates.
	now := time.Now()
	res := cli.Events(ctx, client.EventsListOptions{
		Since: fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		Filters: make(client.Filters).
			Add("type", string(events.ContainerEventType)).
			Add("container", id).
			Add("event", string(events.ActionStart)),
	})

	var n atomic.Int64
	var broken atomic.Bool
	done := make(chan struct{})
	// Drained at once: the engine drops events for a listener that lags 100 ms.
	go func() {
		defer close(done)
		for {
			select {
			case m := <-res.Messages:
				if m.Action == events.ActionStart {
					n.Add(1)
				}
			case err := <-res.Err:
				if err != nil && ctx.Err() == nil {
					broken.Store(true)
				}
				return
			}
		}
	}()

	count = func() int {
		if broken.Load() {
			return -1
		}
		return int(n.Load())
	}
	stop = func() {
		cancel()
		<-done
	}
	return count, stop
}
