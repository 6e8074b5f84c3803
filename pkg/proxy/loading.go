package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"sleeper/assets"
	"sleeper/pkg/watcher"
)

// Paths under ReservedPrefix that sleeper answers itself.
const (
	eventsPath = ReservedPrefix + "events"
	statusPath = ReservedPrefix + "status"
	assetsPath = ReservedPrefix + "assets/"
)

// pageCSP allows the page its own script, stylesheet and event stream and
// nothing else: no inline code, no other origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// defaultHeartbeat keeps idle SSE connections open through proxies and
// load balancers that cut silent ones (nginx and most LBs: 60 s).
const defaultHeartbeat = 15 * time.Second

// maxShownPath bounds how much of the requested URL the page repeats.
const maxShownPath = 200

// loadingState is the Handler's share of the loading page. Its zero value
// is ready to use: the page is built on first use, so NewHandler needs no
// error path and a sleeper that never shows the page never parses it.
type loadingState struct {
	once sync.Once
	page *loadingPage
	err  error
	// heartbeat is the SSE keep-alive interval; zero means defaultHeartbeat.
	// Tests shorten it.
	heartbeat time.Duration
}

// loadingPage is the parsed template and the hashed static assets.
type loadingPage struct {
	tmpl   *template.Template
	assets *assets.Set
}

func (s *loadingState) get() (*loadingPage, error) {
	s.once.Do(func() { s.page, s.err = newLoadingPage() })
	return s.page, s.err
}

func (s *loadingState) heartbeatInterval() time.Duration {
	if s.heartbeat > 0 {
		return s.heartbeat
	}
	return defaultHeartbeat
}

func newLoadingPage() (*loadingPage, error) {
	set, err := assets.Load()
	if err != nil {
		return nil, err
	}
	src, err := assets.Template()
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(assets.PageTemplate).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse loading page: %w", err)
	}
	return &loadingPage{tmpl: tmpl, assets: set}, nil
}

// pageData is what the loading page template shows. It is a value built
// per request; html/template escapes every field.
type pageData struct {
	Name       string
	Path       string // the URL the browser asked for, shortened
	State      string // "waking" or "error": the script reads it
	Step       string // the current step of the wake
	Progress   int    // 0–100, the bar's floor for the current step
	ElapsedMS  int64
	Elapsed    string // "1.2 s"
	EstimateMS int64  // 0 when there is no wake history
	Estimate   string // "3s", "" when unknown
	Error      string // why the wake failed, "" while it runs
	CSS, JS    string // hashed asset URLs
}

// stepProgress is how far along the bar each step puts the wake; the
// script uses the same floors.
var stepProgress = map[watcher.EventType]int{
	watcher.EventWaking:           5,
	watcher.EventDependencyWaking: 15,
	watcher.EventDependencyReady:  35,
	watcher.EventStarted:          45,
	watcher.EventWaitingReady:     60,
	watcher.EventReady:            100,
}

// answerAsleep applies the policy for a request to a container that is not
// ready: refuse a path that may not wake it, give a browser the loading
// page, or return false to hold the request. It runs only after Acquire
// failed, so an awake container never pays for it.
func (h *Handler) answerAsleep(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) bool {
	if w.State() == watcher.StateReady {
		return false // woke in the meantime: hold goes straight through
	}
	spec := w.Spec()
	if !mayWake(spec, r.URL.Path) {
		writeAnswer(rw, w.Name(), w.Answer(watcher.ErrWakeRefused))
		h.rec.Request(w.Name(), "rejected")
		return true
	}
	if !spec.LoadingPage || !isBrowserNavigation(r) {
		return false
	}
	w.Kick()
	h.serveLoadingPage(w, rw, r)
	return true
}

// serveLoadingPage answers a browser at once with the loading page. It is
// 200, not 503: the page is a working answer for a person, who would
// otherwise see an error page for an app that is only starting.
func (h *Handler) serveLoadingPage(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	page, err := h.loading.get()
	if err != nil {
		h.log.Error("loading page unavailable", "container", w.Name(), "error", err)
		h.hold(w, rw, r) // still correct, only without the page
		return
	}
	events, _ := w.Progress()
	data := newPageData(w.Name(), w.State(), events, w.RecentWakes(), time.Now())
	data.Path = shownPath(r)
	data.CSS = assetsPath + page.assets.Name("loading.css")
	data.JS = assetsPath + page.assets.Name("loading.js")
	var buf bytes.Buffer
	if err := page.tmpl.Execute(&buf, data); err != nil {
		h.log.Error("render loading page", "container", w.Name(), "error", err)
		http.Error(rw, fmt.Sprintf("sleeper: %s is waking up", w.Name()), http.StatusInternalServerError)
		return
	}
	hd := rw.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", pageCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(buf.Bytes()) // net/http drops the body of a HEAD
	h.rec.Request(w.Name(), "loading_page")
}

// newPageData describes the wake as it stands: the events of the wake in
// progress (or of the last one, when it failed) and the estimate.
func newPageData(name string, st watcher.State, events []watcher.Event, recent []time.Duration, now time.Time) pageData {
	d := pageData{Name: name, State: "waking", Step: "Waking " + name, Progress: stepProgress[watcher.EventWaking]}
	if est := median(recent); est > 0 {
		d.EstimateMS = est.Milliseconds()
		d.Estimate = strconv.Itoa(int(math.Ceil(est.Seconds()))) + "s"
	}
	if (st == watcher.StateWaking || st == watcher.StateError) && len(events) > 0 {
		last := events[len(events)-1]
		d.Step = last.Message
		d.Progress = max(d.Progress, stepProgress[last.Type])
		d.ElapsedMS = max(0, now.Sub(events[0].Time).Milliseconds())
		if st == watcher.StateError && last.Type == watcher.EventError {
			d.State, d.Step, d.Error = "error", "Could not start it", last.Message
			d.ElapsedMS = last.Time.Sub(events[0].Time).Milliseconds()
		}
	}
	d.Elapsed = strconv.FormatFloat(float64(d.ElapsedMS)/1000, 'f', 1, 64) + " s"
	return d
}

// shownPath is the requested path and query as the page repeats it:
// decoded for reading, cut short, without control characters.
func shownPath(r *http.Request) string {
	p := r.URL.Path
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	p = oneLine(p)
	if utf8.RuneCountInString(p) > maxShownPath {
		p = string([]rune(p)[:maxShownPath]) + "…"
	}
	return p
}

// oneLine drops control characters, so that what a client sent cannot add
// lines to a plain-text answer.
func oneLine(s string) string {
	return strings.Map(func(c rune) rune {
		if unicode.IsControl(c) {
			return -1
		}
		return c
	}, s)
}

// median is the ETA: robust to one slow outlier wake. Zero without history.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// serveReserved answers the /.sleeper/ paths on every routed host.
func (h *Handler) serveReserved(w *watcher.Watcher, rw http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	known := p == eventsPath || p == statusPath || strings.HasPrefix(p, assetsPath)
	if !known {
		http.Error(rw, fmt.Sprintf("sleeper: unknown endpoint %q", p), http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rw.Header().Set("Allow", "GET, HEAD")
		http.Error(rw, "sleeper: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case p == eventsPath:
		h.serveEvents(w, rw, r)
	case p == statusPath:
		writeStatus(w, rw, http.StatusOK)
	default:
		h.serveAsset(rw, r, strings.TrimPrefix(p, assetsPath))
	}
}

// serveAsset serves a static file by its hashed name. Only exact names of
// embedded files match, so traversal ("../x", "%2e%2e") finds nothing.
func (h *Handler) serveAsset(rw http.ResponseWriter, r *http.Request, name string) {
	page, err := h.loading.get()
	if err != nil {
		http.Error(rw, "sleeper: assets unavailable", http.StatusInternalServerError)
		return
	}
	f, ok := page.assets.Lookup(name)
	if !ok {
		http.Error(rw, fmt.Sprintf("sleeper: no asset %q", name), http.StatusNotFound)
		return
	}
	hd := rw.Header()
	hd.Set("Content-Type", f.ContentType)
	// The name changes with the content, so the content never changes.
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", `"`+f.Name+`"`)
	http.ServeContent(rw, r, f.Name, time.Time{}, bytes.NewReader(f.Body))
}

// statusWire is the JSON of /.sleeper/status.
type statusWire struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Ready      bool   `json:"ready"`
	LastWakeMS int64  `json:"last_wake_ms"`
	EstimateMS int64  `json:"estimate_ms"`
	Error      string `json:"error"`
}

// writeStatus reports the container's state for uptime monitors. The
// endpoint answers 200, so that an app that sleeps as designed is
// "asleep", not down; an ignored request to a sleeping app gets the same
// body with 503 (ignore.go).
func writeStatus(w *watcher.Watcher, rw http.ResponseWriter, code int) {
	info := w.Info()
	body, err := json.Marshal(statusWire{
		Name:       info.Name,
		State:      info.State.String(),
		Ready:      info.State == watcher.StateReady,
		LastWakeMS: info.LastWake.Milliseconds(),
		EstimateMS: median(w.RecentWakes()).Milliseconds(),
		Error:      info.Reason, // public: the full error is for the admin API
	})
	if err != nil {
		http.Error(rw, fmt.Sprintf("sleeper: status of %s: %v", w.Name(), err), http.StatusInternalServerError)
		return
	}
	hd := rw.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	_, _ = rw.Write(append(body, '\n'))
}
