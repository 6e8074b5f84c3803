package proxmox

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinels matched with errors.Is against an *APIError (or a *TaskError for
// none of them): PVE has no error codes, so they are derived from the HTTP
// status and the text it puts in the reason phrase and the body.
var (
	// ErrUnauthorized matches 401 (a wrong, expired or unknown token) and 403
	// (a token that lacks a privilege, such as VM.PowerMgmt on the guest).
	ErrUnauthorized = errors.New("proxmox: unauthorized")
	// ErrNotFound matches a guest, node or task that does not exist.
	ErrNotFound = errors.New("proxmox: not found")
	// ErrAlreadyRunning matches a start of a guest that runs already.
	ErrAlreadyRunning = errors.New("proxmox: guest already running")
	// ErrNotRunning matches a shutdown or stop of a guest that is stopped.
	ErrNotRunning = errors.New("proxmox: guest not running")
	// ErrFingerprintMismatch is wrapped by the TLS error when the server's
	// certificate does not have the pinned SHA-256 fingerprint.
	ErrFingerprintMismatch = errors.New("proxmox: server certificate fingerprint mismatch")
)

// APIError is a non-2xx answer of the PVE API. PVE puts its message in the
// HTTP reason phrase ("500 CT 101 already running"); newer servers repeat it
// as {"message": …}, and parameter errors come as {"errors": {field: text}}.
type APIError struct {
	Method string
	Path   string // below /api2/json, e.g. /nodes/pve1/lxc/101/status/start
	Status int
	// Reason is the HTTP reason phrase, where PVE puts its message.
	Reason string
	// Message is the body's message, or its per-parameter errors flattened
	// into "field: text; field: text", sorted by field.
	Message string
}

// Error implements error: "proxmox POST /nodes/…: 500 CT 101 already running".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proxmox %s %s: %d", e.Method, e.Path, e.Status)
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.Status)
	}
	if reason != "" {
		b.WriteString(" " + reason)
	}
	if e.Message != "" && !strings.Contains(reason, e.Message) {
		b.WriteString(": " + e.Message)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		// A real node answers every refused token with the same reason
		// and an empty body: say what the user can check.
		b.WriteString(" (the API token was refused: check the token id and secret, and that the token has not expired)")
	case http.StatusForbidden:
		if p := e.Privilege(); p != "" {
			fmt.Fprintf(&b, " (the API token lacks the privilege %s on %s)", p, e.permPath())
		}
	}
	return b.String()
}

// Privilege returns the privilege a 403 names ("Permission check failed
// (/vms/120, VM.PowerMgmt)"), "" when it names none.
func (e *APIError) Privilege() string {
	_, priv := e.permParts()
	return priv
}

func (e *APIError) permPath() string {
	p, _ := e.permParts()
	return p
}

func (e *APIError) permParts() (path, priv string) {
	text := e.Reason + " " + e.Message
	i := strings.Index(text, "Permission check failed (")
	if i < 0 {
		return "", ""
	}
	inner, _, ok := strings.Cut(text[i+len("Permission check failed ("):], ")")
	if !ok {
		return "", ""
	}
	path, priv, ok = strings.Cut(inner, ",")
	if !ok {
		return "", strings.TrimSpace(path)
	}
	return strings.TrimSpace(path), strings.TrimSpace(priv)
}

// Is lets errors.Is match the package's sentinels.
func (e *APIError) Is(target error) bool {
	text := strings.ToLower(e.Reason + " " + e.Message)
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrNotFound:
		// "Configuration file 'nodes/pve1/lxc/105.conf' does not exist",
		// "no such task", an unknown node's failed hostname lookup.
		return e.Status == http.StatusNotFound || strings.Contains(text, "does not exist") ||
			strings.Contains(text, "no such") || strings.Contains(text, "hostname lookup")
	case ErrAlreadyRunning:
		return strings.Contains(text, "already running")
	case ErrNotRunning:
		return strings.Contains(text, "not running")
	}
	return false
}

// TaskError is a finished task whose exit status is neither "OK" nor
// "WARNINGS: n": the exit status is PVE's error text.
type TaskError struct {
	UPID       UPID
	ExitStatus string
}

// Error implements error.
func (e *TaskError) Error() string {
	return fmt.Sprintf("proxmox task %s failed: %s", e.UPID, e.ExitStatus)
}
