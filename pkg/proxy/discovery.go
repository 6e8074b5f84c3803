package proxy

import (
	"context"
	"time"

	"sleeper/pkg/watcher"
)

// DiscoveryWait bounds how long a request for an unknown host waits for
// sleeper's first discovery to finish. Right after a (re)start the routes
// fill in within a second or two even with a thousand containers; a request
// arriving then is for an app that may well exist, so it is held rather than
// refused. The bound keeps a request for a host that really is unknown from
// hanging on an engine that does not answer.
const DiscoveryWait = 5 * time.Second

// discovery holds requests for unknown hosts until the first discovery ends.
type discovery struct {
	ready <-chan struct{} // closed when the first full list is done; nil: done
	wait  time.Duration
}

// lookupAfterDiscovery is the unknown-host path: while discovery is still
// running, it waits for it (at most d.wait, or until the client leaves) and
// looks the host up again. Once discovery is done it returns nil at once.
func (h *Handler) lookupAfterDiscovery(ctx context.Context, host string) *watcher.Watcher {
	d := h.discovery
	if d.ready == nil {
		return nil
	}
	select {
	case <-d.ready:
		return nil // discovered already: the host is unknown
	default:
	}
	t := time.NewTimer(d.wait)
	defer t.Stop()
	select {
	case <-d.ready:
	case <-t.C:
	case <-ctx.Done():
		return nil
	}
	return h.routes.Routes().Lookup(host)
}
