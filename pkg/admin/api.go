package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// StateUnmanaged is the state of a container sleeper knows but does not
// manage (broken labels, a route another container owns). It is not a
// watcher state: such a container has no watcher.
const StateUnmanaged = "unmanaged"

// Container is one container on the wire (GET /api/containers). It is kept
// apart from watcher.Info so that the JSON stays stable when the watcher's
// internals change. Times are RFC 3339 in UTC, null when unknown or not
// applicable; Error is "" when all is well.
type Container struct {
	Name     string   `json:"name"`
	ID       string   `json:"id"`
	Provider string   `json:"provider"`
	State    string   `json:"state"`
	Hosts    []string `json:"hosts"`
	// HostSources is Hosts with where each came from: source "label"
	// (sleeper.hosts), "domain" (--domain), "traefik" or "caddy", and the
	// label key.
	HostSources  []labels.HostSource `json:"host_sources"`
	IdleTimeout  string              `json:"idle_timeout"`
	LastActivity *time.Time          `json:"last_activity"`
	SleepsAt     *time.Time          `json:"sleeps_at"`
	LastWakeMS   *int64              `json:"last_wake_ms"`
	Error        string              `json:"error"`
	// Readiness is the rule that ends a wake, in the order of precedence
	// docs/behaviour.md gives: "http /alive" (ready_path),
	// "healthcheck-url <url>", "healthcheck-exec", "healthcheck-event",
	// "http", "tcp" or "running";
	// "" for an unmanaged container.
	Readiness string `json:"readiness"`
	// Group is sleeper.group, AwakeDuring the keep-warm schedule
	// (normalised), NextWindow the start of its next window and InWindow
	// whether now is inside one; BusyCPU the busy guard's threshold in
	// percent. Empty, null, false and 0 when not set.
	Group       string     `json:"group"`
	AwakeDuring string     `json:"awake_during"`
	NextWindow  *time.Time `json:"next_window"`
	InWindow    bool       `json:"in_window"`
	BusyCPU     float64    `json:"busy_cpu"`
	// MemoryFreedBytes is, for a sleeping container, the memory it used
	// just before it was stopped; 0 while awake, paused or unknown.
	MemoryFreedBytes uint64 `json:"memory_freed_bytes"`
}

// ActionResult answers a wake or a sleep.
type ActionResult struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// WakeMS is how long the wake took; 0 when the container was already
	// ready. Absent on a sleep.
	WakeMS *int64 `json:"wake_ms,omitempty"`
}

// toContainer converts the watcher's view into the wire type.
func toContainer(info watcher.Info) Container {
	c := Container{
		Name:     info.Name,
		ID:       info.ID,
		Provider: info.Provider,
		State:    StateUnmanaged,
		Hosts:    info.Hosts,
		Error:    info.Error,
	}
	if c.Hosts == nil {
		c.Hosts = []string{}
	}
	c.HostSources = info.HostSources
	if c.HostSources == nil {
		c.HostSources = []labels.HostSource{}
	}
	if info.Managed {
		c.State = info.State.String()
		c.IdleTimeout = info.IdleTimeout.String()
		c.Readiness = info.Readiness
	}
	c.Group, c.AwakeDuring, c.InWindow, c.BusyCPU = info.Group, info.AwakeDuring, info.InWindow, info.BusyCPU
	c.NextWindow = wireTime(info.NextWindow)
	c.MemoryFreedBytes = info.MemoryFreed
	c.LastActivity = wireTime(info.LastActivity)
	c.SleepsAt = wireTime(info.SleepsAt)
	if info.LastWake > 0 {
		ms := info.LastWake.Milliseconds()
		c.LastWakeMS = &ms
	}
	return c
}

func wireTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
}

// list returns every container, sorted by name whatever the registry does.
func (s *server) list() []watcher.Info {
	infos := s.cfg.Registry.List()
	slices.SortFunc(infos, func(a, b watcher.Info) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

func (s *server) listContainers(rw http.ResponseWriter, _ *http.Request) {
	infos := s.list()
	out := make([]Container, 0, len(infos))
	for _, info := range infos {
		out = append(out, toContainer(info))
	}
	writeJSON(rw, http.StatusOK, out)
}

func (s *server) getContainer(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, info := range s.cfg.Registry.List() {
		if info.Name == name {
			writeJSON(rw, http.StatusOK, toContainer(info))
			return
		}
	}
	writeError(rw, http.StatusNotFound, fmt.Sprintf("unknown container %q", name))
}

// authorize guards the mutating endpoints with the bearer token.
func (s *server) authorize(next http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		if s.tokenHash == nil {
			writeError(rw, http.StatusForbidden, "mutating API disabled: set --admin-token")
			return
		}
		token, ok := bearerToken(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.tokenHash) != 1 {
			s.log.Warn("admin API: unauthorized request", "method", r.Method, "path", r.URL.Path,
				"remote_addr", r.RemoteAddr)
			rw.Header().Set("WWW-Authenticate", "Bearer")
			writeError(rw, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(rw, r)
	}
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. The scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// managed returns the watcher a mutating call targets, or writes a 404
// that names the container and, for a known but unmanaged one, why.
func (s *server) managed(rw http.ResponseWriter, r *http.Request) *watcher.Watcher {
	name := r.PathValue("name")
	if w := s.cfg.Registry.Get(name); w != nil {
		return w
	}
	for _, info := range s.cfg.Registry.List() {
		if info.Name == name {
			writeError(rw, http.StatusNotFound, fmt.Sprintf("container %q is not managed: %s", name, info.Error))
			return nil
		}
	}
	writeError(rw, http.StatusNotFound, fmt.Sprintf("unknown container %q", name))
	return nil
}

// wake makes the container ready and waits for it, within its wake_timeout,
// answering like the proxy would (watcher.Answer).
func (s *server) wake(rw http.ResponseWriter, r *http.Request) {
	w := s.managed(rw, r)
	if w == nil {
		return
	}
	s.log.Info("admin API: wake", "container", w.Name(), "remote_addr", r.RemoteAddr)
	dur, err := w.Wait(r.Context()) // within wake_timeout, as the proxy waits

	if err != nil {
		if r.Context().Err() != nil {
			return // the client left; nobody to answer
		}
		writeFailure(rw, w, err)
		return
	}
	ms := dur.Milliseconds()
	writeJSON(rw, http.StatusOK, ActionResult{Name: w.Name(), State: w.State().String(), WakeMS: &ms})
}

// writeFailure answers a failed wake or sleep with the status and reason of
// watcher.Answer, the proxy's mapping. The admin listener is for operators
// (SECURITY.md), so the error's first line follows the public reason.
func writeFailure(rw http.ResponseWriter, w *watcher.Watcher, err error) {
	a := w.Answer(err)
	a.SetHeader(rw.Header())
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	writeError(rw, a.Status, fmt.Sprintf("%s: %s (%s)", w.Name(), a.Reason, msg))
}

// sleepGrace is added to stop_timeout to bound an API sleep, the same margin
// the watcher gives its own stop call.
const sleepGrace = 30 * time.Second

// sleep puts the container to sleep now, whatever its idle time.
func (s *server) sleep(rw http.ResponseWriter, r *http.Request) {
	w := s.managed(rw, r)
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), w.Spec().StopTimeout+sleepGrace)
	defer cancel()
	s.log.Info("admin API: sleep", "container", w.Name(), "remote_addr", r.RemoteAddr)
	if err := w.Sleep(ctx, "api"); err != nil {
		if r.Context().Err() != nil {
			return // the client left; nobody to answer
		}
		writeFailure(rw, w, err)
		return
	}
	writeJSON(rw, http.StatusOK, ActionResult{Name: w.Name(), State: w.Info().State.String()})
}
