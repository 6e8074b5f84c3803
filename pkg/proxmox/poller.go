package proxmox

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Poller intervals when PollerConfig leaves them zero. One call lists every
// guest of the cluster, so the slow interval costs one request per 5 s
// whatever the number of guests.
const (
	DefaultPollInterval     = 5 * time.Second
	DefaultFastPollInterval = 250 * time.Millisecond
)

// PollerConfig builds a Poller.
type PollerConfig struct {
	Client       *Client       // required
	Interval     time.Duration // DefaultPollInterval when zero
	FastInterval time.Duration // DefaultFastPollInterval when zero
	// OnChange is called from Run's goroutine, one call at a time, for every
	// LXC guest whose status changed between two polls; status is "" when
	// the guest is gone from the list. After the first successful poll, and
	// after every failed one (which may have hidden changes), it is called
	// for every LXC guest. It must not block: enqueue and return.
	OnChange func(node string, vmid int, status string)
	Log      *slog.Logger // required
}

// Poller stands in for the event stream PVE does not have: it lists every
// guest's status (LXC and VM) with /cluster/resources once per interval, so
// that guests started or stopped in the PVE UI are noticed. PVE refreshes
// that list only every 10 s (pvestatd), so sleeper's own starts and stops
// do not poll it faster: they watch the guest's live status/current
// instead. Fast remains for callers that want it. Run owns the only
// goroutine.
type Poller struct {
	cfg  PollerConfig
	log  *slog.Logger
	kick chan struct{} // a fast mode began: recompute the wait now

	mu     sync.Mutex
	fast   int               // holders of Fast
	last   map[guestKey]seen // status per LXC guest as of the last poll
	synced bool              // last poll succeeded; false reports everything next time
	failed bool              // last poll failed, for logging once per outage
}

// seen is what a poll saw of one guest.
type seen struct {
	status string
	uptime time.Duration
}

// NewPoller returns a poller; Run starts it.
func NewPoller(cfg PollerConfig) *Poller {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPollInterval
	}
	if cfg.FastInterval <= 0 {
		cfg.FastInterval = DefaultFastPollInterval
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(string, int, string) {}
	}
	return &Poller{cfg: cfg, log: cfg.Log, kick: make(chan struct{}, 1)}
}

// Fast makes the poller use its fast interval until the returned release
// is called (more than once is fine). Holders are counted: the poller is
// fast while any of them holds on.
func (p *Poller) Fast() (release func()) {
	p.mu.Lock()
	p.fast++
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.fast--
			p.mu.Unlock()
		})
	}
}

// Status returns a guest's status as of the last successful poll.
func (p *Poller) Status(node string, vmid int) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.last[guestKey{node, vmid}]
	return s.status, ok
}

func (p *Poller) interval() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fast > 0 {
		return p.cfg.FastInterval
	}
	return p.cfg.Interval
}

// Run polls until ctx ends and returns nil then: PVE being unreachable is
// logged and retried at the next interval, never fatal.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		p.poll(ctx)
		last := time.Now()
		for waiting := true; waiting; {
			t.Reset(time.Until(last.Add(p.interval())))
			select {
			case <-ctx.Done():
				return nil
			case <-p.kick:
				// Fast mode may have begun: wait only what is left of the
				// fast interval since the last poll. (Since Go 1.23 a stopped
				// timer delivers nothing stale: no drain.)
				t.Stop()
			case <-t.C:
				waiting = false
			}
		}
	}
}

// poll lists the guests once and reports the LXC guests that changed.
func (p *Poller) poll(ctx context.Context) {
	res, err := p.cfg.Client.Resources(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		first := !p.failed
		p.failed, p.synced = true, false
		p.mu.Unlock()
		if first {
			p.log.Warn("proxmox poll failed, retrying", "error", err)
		} else {
			p.log.Debug("proxmox poll failed", "error", err)
		}
		return
	}
	p.mu.Lock()
	prev, synced, recovered := p.last, p.synced, p.failed
	p.mu.Unlock()
	now := make(map[guestKey]seen, len(res))
	for _, r := range res {
		if (r.Type != TypeLXC && r.Type != TypeQEMU) || r.Node == "" || r.VMID <= 0 || r.Template {
			continue
		}
		s := seen{r.Status, r.Uptime}
		if old, ok := prev[guestKey{r.Node, r.VMID}]; ok && r.Status == "unknown" {
			// The node's stats are missing (offline, or pvestatd late):
			// no news of the guest, not a change.
			s = old
		}
		now[guestKey{r.Node, r.VMID}] = s
	}
	p.mu.Lock()
	p.last, p.synced, p.failed = now, true, false
	p.mu.Unlock()
	if recovered {
		p.log.Info("proxmox poll works again")
	}
	for k, s := range now {
		old, ok := prev[k]
		// A shorter uptime is a restart between two polls: a change too.
		restarted := s.status == StatusRunning && s.uptime < old.uptime
		if !synced || !ok || old.status != s.status || restarted {
			p.cfg.OnChange(k.node, k.vmid, s.status)
		}
	}
	for k := range prev {
		if _, ok := now[k]; !ok {
			p.cfg.OnChange(k.node, k.vmid, "")
		}
	}
}

// Note records a status that sleeper brought about itself (a start or a
// stop it made), as if a poll had seen it.
func (p *Poller) Note(node string, vmid int, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[guestKey]seen{}
	}
	p.last[guestKey{node, vmid}] = seen{status: status}
}
