package watcher

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Answer is what a front door tells a client whose wait for a container,
// or whose sleep of it, ended in err. It is the one mapping from the
// watcher's errors to HTTP: the proxy, the loading page, the status
// endpoint and the admin API all use it.
type Answer struct {
	// Status is the HTTP status code.
	Status int
	// Reason is a short fixed phrase ("the app failed to start"). It never
	// carries the error's text, which can name dependencies, addresses,
	// Proxmox nodes and vmids: anyone who reaches a routed host reads it.
	// The full error goes to the log and the admin API.
	Reason string
	// RetryAfter is the Retry-After header in whole seconds; 0 means none.
	RetryAfter int
}

// AnswerFor maps err to an answer. wakeTimeout is named in a timeout's
// reason; usualWake (the median of recent wakes, 0 when unknown) sets
// Retry-After on a refusal that the client may simply try again.
func AnswerFor(err error, wakeTimeout, usualWake time.Duration) Answer {
	retry := max(1, int(math.Ceil(usualWake.Seconds())))
	var sleepErr *SleepError
	var depErr *DependencyError
	var exitErr *ExitError
	switch {
	case err == nil:
		return Answer{Status: http.StatusOK}
	case errors.As(err, &sleepErr) && errors.Is(err, context.DeadlineExceeded):
		return Answer{Status: http.StatusGatewayTimeout, Reason: "the app is still going to sleep"}
	case sleepErr != nil:
		return Answer{Status: http.StatusBadGateway, Reason: "the app failed to go to sleep"}
	case errors.Is(err, ErrBusy):
		return Answer{Status: http.StatusConflict, Reason: "the app is waking; try again when it is ready", RetryAfter: retry}
	case errors.Is(err, ErrTooManyHeld):
		return Answer{Status: http.StatusServiceUnavailable, Reason: "too many requests are waiting for the app", RetryAfter: retry}
	case errors.Is(err, ErrWakeRefused):
		return Answer{Status: http.StatusServiceUnavailable, Reason: "the app is asleep and this request does not wake it", RetryAfter: retry}
	case errors.Is(err, ErrUnreachable):
		// Before the timeouts: a transport timeout is the app's silence,
		// not a wake that took too long.
		return Answer{Status: http.StatusBadGateway, Reason: "the app is not reachable"}
	case errors.As(err, &depErr):
		// Before the timeouts: a dependency that timed out on its own
		// wake_timeout is a failed dependency, not this wake's timeout.
		return Answer{Status: http.StatusBadGateway, Reason: "a dependency failed to start"}
	case errors.Is(err, ErrClosed):
		return Answer{Status: http.StatusNotFound, Reason: "the app is gone"}
	case errors.Is(err, ErrWakeTimeout) || errors.Is(err, context.DeadlineExceeded):
		return Answer{Status: http.StatusGatewayTimeout, Reason: timedOut(wakeTimeout)}
	case errors.Is(err, ErrNotReady):
		return Answer{Status: http.StatusServiceUnavailable, Reason: "the app went back to sleep; try again", RetryAfter: retry}
	case errors.As(err, &exitErr):
		// The exit code helps whoever runs the app and names nothing
		// internal; the engine's detail stays in the log.
		return Answer{Status: http.StatusBadGateway, Reason: "the app exited with code " + strconv.Itoa(exitErr.Code)}
	default:
		return Answer{Status: http.StatusBadGateway, Reason: "the app failed to start"}
	}
}

// SetHeader sets the answer's headers on h: Retry-After when there is one.
// Every front door writes the header through it.
func (a Answer) SetHeader(h http.Header) {
	if a.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(a.RetryAfter))
	}
}

// Answer maps err to an answer with this container's wake_timeout and
// usual wake time.
func (w *Watcher) Answer(err error) Answer {
	return AnswerFor(err, wakeTimeout(w.spec.Load()), w.usualWake())
}

// usualWake is the median of the recent successful wakes, 0 without any:
// robust to one slow outlier.
func (w *Watcher) usualWake() time.Duration {
	return median(w.RecentWakes())
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// timedOut says how long the wake was given, in the unit a label would use
// ("60s", "1.5s", "300ms") rather than Go's "1m0s".
func timedOut(d time.Duration) string {
	switch {
	case d <= 0:
		return "timed out"
	case d < time.Second:
		return "timed out after " + d.String()
	default:
		return "timed out after " + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	}
}
