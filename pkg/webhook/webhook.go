// Package webhook tells receivers (--webhook-url) what sleeper did: a JSON
// POST on woke, slept, wake_failed and config_error, signed with
// HMAC-SHA256 over the body when a secret is set (--webhook-secret).
//
// Policy: a delivery never delays a wake or a sleep. Events are put on a
// bounded queue per receiver without blocking (a full queue drops the event
// and says so in the log); one goroutine per receiver, owned by Run, posts
// them in order, retrying a bounded number of times with exponential
// backoff. A failing receiver is logged at most once per minute, with the
// number of failures since the last line, and once more when it recovers.
// Run ends when its context does; events still queued then are dropped.
package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"sleeper/pkg/watcher"
)

// Event kinds, the "event" field and the X-Sleeper-Event header.
const (
	EventWoke        = "woke"
	EventSlept       = "slept"
	EventWakeFailed  = "wake_failed"
	EventConfigError = "config_error"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// under --webhook-secret; absent without a secret.
const SignatureHeader = "X-Sleeper-Signature"

// EventHeader repeats the event kind, for receivers that route on headers.
const EventHeader = "X-Sleeper-Event"

// Payload is the JSON body of one delivery.
type Payload struct {
	Event     string `json:"event"`
	Container string `json:"container"`
	Provider  string `json:"provider"`
	// Reason is why: for slept "idle", "api" or "external"; for
	// wake_failed "timeout" or "error"; for config_error the label error;
	// "" for woke (a request, the API or a start by hand: the watcher
	// does not tell them apart).
	Reason string `json:"reason"`
	// Method is how it was put to sleep (stop, pause, kill); slept only.
	Method string `json:"method,omitempty"`
	// Error is the full error of a failed wake or a bad label.
	Error string `json:"error,omitempty"`
	// WakeMS is how long the wake took (woke, wake_failed).
	WakeMS *int64 `json:"wake_ms,omitempty"`
	// Time is when it happened, RFC 3339 in UTC.
	Time time.Time `json:"time"`
}

// Lookup finds what the watcher's recorder calls do not carry: the
// container's provider and error. watcher.Registry's List has it.
type Lookup interface {
	List() []watcher.Info
}

// Config builds a Notifier.
type Config struct {
	URLs   []string // receivers; see ParseURL
	Secret string   // HMAC-SHA256 key; empty sends unsigned bodies
	Log    *slog.Logger
	// Client posts the deliveries; a client with a 10 s timeout when nil.
	Client *http.Client
	// QueueSize bounds the events waiting per receiver (default 256).
	QueueSize int
	// Retries is how many times a failed delivery is tried again
	// (default 3); Backoff the first wait between tries (default 1 s),
	// doubled each time.
	Retries int
	Backoff time.Duration
	// LogEvery is the least time between two log lines about one
	// failing receiver (default one minute).
	LogEvery time.Duration
	Now      func() time.Time
}

// Notifier delivers events to every receiver.
type Notifier struct {
	cfg       Config
	log       *slog.Logger
	receivers []*receiver
	lookup    atomic.Pointer[Lookup]
}

// receiver is one URL's queue and delivery state. The state is only
// touched by its own goroutine.
type receiver struct {
	url     string
	shown   string // the URL without query or user info, for the log
	queue   chan Payload
	dropped atomic.Int64

	failing    bool
	failures   int       // failed deliveries since the last log line
	lastLogged time.Time // when a failure was last logged
}

// ParseURL checks one --webhook-url: an absolute http or https URL.
func ParseURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("webhook url %q: %w", v, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("webhook url %q: must be an absolute http:// or https:// URL", shownURL(u))
	}
	return u.String(), nil
}

// New returns a notifier; Run delivers. URLs must have passed ParseURL.
func New(cfg Config) *Notifier {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	} else if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Notifier{cfg: cfg, log: cfg.Log}
	for _, raw := range cfg.URLs {
		shown := raw
		if u, err := url.Parse(raw); err == nil {
			shown = shownURL(u)
		}
		n.receivers = append(n.receivers, &receiver{url: raw, shown: shown, queue: make(chan Payload, cfg.QueueSize)})
	}
	return n
}

// shownURL drops what may be a secret (user info, query, fragment): many
// webhook URLs carry their token there.
func shownURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Attach gives the notifier where to look up providers and errors. Safe
// while Run runs; events sent before it carry what the recorder knew.
func (n *Notifier) Attach(l Lookup) { n.lookup.Store(&l) }

// Send queues an event for every receiver without blocking: when a
// receiver's queue is full the event is dropped for it (and counted).
func (n *Notifier) Send(p Payload) {
	if p.Time.IsZero() {
		p.Time = n.cfg.Now()
	}
	p.Time = p.Time.UTC().Truncate(time.Millisecond)
	for _, r := range n.receivers {
		select {
		case r.queue <- p:
		default:
			r.dropped.Add(1)
		}
	}
}

// Run delivers until ctx ends, one goroutine per receiver.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range n.receivers {
		wg.Go(func() { n.deliverAll(ctx, r) })
	}
	wg.Wait()
	return nil
}

func (n *Notifier) deliverAll(ctx context.Context, r *receiver) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-r.queue:
			n.complete(&p)
			err := n.deliver(ctx, r, p)
			if ctx.Err() != nil {
				return
			}
			n.report(r, p, err)
		}
	}
}

// complete fills in the provider and error from the registry. It runs on
// the delivery goroutine: the recorder is called under the registry's and
// the watcher's locks, where a lookup would deadlock.
func (n *Notifier) complete(p *Payload) {
	l := n.lookup.Load()
	if l == nil {
		return
	}
	for _, info := range (*l).List() {
		if info.Name != p.Container {
			continue
		}
		p.Provider = cmp.Or(p.Provider, info.Provider)
		if p.Event == EventWakeFailed || p.Event == EventConfigError {
			p.Error = cmp.Or(p.Error, info.Error)
		}
		if p.Event == EventConfigError {
			p.Reason = cmp.Or(p.Reason, info.Error)
		}
		return
	}
}

// deliver posts one event, retrying with backoff. It returns the last error.
func (n *Notifier) deliver(ctx context.Context, r *receiver, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode %s event of %s: %w", p.Event, p.Container, err)
	}
	wait := n.cfg.Backoff
	for attempt := 0; ; attempt++ {
		err = n.post(ctx, r.url, p.Event, body)
		if err == nil || attempt >= n.cfg.Retries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// post sends one request; only a 2xx answer is a delivery.
func (n *Notifier) post(ctx context.Context, target, event string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sleeper-webhook")
	req.Header.Set(EventHeader, event)
	if n.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(n.cfg.Secret, body))
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the URL, which may hold a token
		}
		return fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Sign is the value of SignatureHeader for body: "sha256=" and the hex
// HMAC-SHA256 of the body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// report logs a failing receiver at most once per LogEvery, and its
// recovery once.
func (n *Notifier) report(r *receiver, p Payload, err error) {
	now := n.cfg.Now()
	dropped := r.dropped.Swap(0)
	if err == nil {
		if r.failing {
			n.log.Info("webhook receiver answers again", "url", r.shown, "failed_since_last_log", r.failures)
			r.failing, r.failures, r.lastLogged = false, 0, time.Time{}
		}
		if dropped > 0 {
			n.log.Warn("webhook queue was full: events dropped", "url", r.shown, "dropped", dropped)
		}
		return
	}
	r.failing = true
	r.failures++
	if !r.lastLogged.IsZero() && now.Sub(r.lastLogged) < n.cfg.LogEvery {
		r.dropped.Add(dropped) // kept for the next line
		return
	}
	n.log.Warn("webhook delivery failed", "url", r.shown, "event", p.Event, "container", p.Container,
		"error", err, "failed_since_last_log", r.failures, "dropped", dropped, "tries", n.cfg.Retries+1)
	r.failures, r.lastLogged = 0, now
}
