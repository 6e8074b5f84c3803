package watcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAnswerFor is the one mapping from wake and sleep errors to what a
// client is told. Every error below carries internal details (addresses,
// dependency names, Proxmox node and vmid); no reason may repeat them.
func TestAnswerFor(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8080},
		Err: errors.New("connect: connection refused")}
	pve := errors.New("start guest pve1/105: 500 Configuration file 'nodes/pve1/lxc/105.conf' does not exist")
	exit := &ExitError{Code: 3, Detail: "OCI runtime exec failed: /secret/entrypoint"}
	wake := func(err error) error { return &WakeError{Container: "app", Err: err} }
	tests := []struct {
		name       string
		err        error
		wakeTO     time.Duration
		usual      time.Duration
		status     int
		reason     string
		retryAfter int
	}{
		{"no error", nil, time.Minute, 0, http.StatusOK, "", 0},
		{"wake timeout", wake(ErrWakeTimeout), time.Minute, 0, http.StatusGatewayTimeout, "timed out after 60s", 0},
		{"client's own deadline", context.DeadlineExceeded, 90 * time.Second, 0, http.StatusGatewayTimeout, "timed out after 90s", 0},
		{"sub-second timeout", wake(ErrWakeTimeout), 300 * time.Millisecond, 0, http.StatusGatewayTimeout, "timed out after 300ms", 0},
		{"fractional timeout", wake(ErrWakeTimeout), 1500 * time.Millisecond, 0, http.StatusGatewayTimeout, "timed out after 1.5s", 0},
		{"exited", wake(exit), time.Minute, 0, http.StatusBadGateway, "the app exited with code 3", 0},
		{"engine start error", wake(fmt.Errorf("start: %w", errors.New("driver failed on 172.18.0.4"))), time.Minute, 0, http.StatusBadGateway, "the app failed to start", 0},
		{"proxmox error", wake(pve), time.Minute, 0, http.StatusBadGateway, "the app failed to start", 0},
		{"dependency missing", wake(&DependencyError{Name: "secret-db", Err: ErrDependencyNotFound}), time.Minute, 0, http.StatusBadGateway, "a dependency failed to start", 0},
		{"dependency exited", wake(&DependencyError{Name: "secret-db", Err: wake(exit)}), time.Minute, 0, http.StatusBadGateway, "a dependency failed to start", 0},
		{"dependency timed out", wake(&DependencyError{Name: "secret-db", Err: wake(ErrWakeTimeout)}), time.Minute, 0, http.StatusBadGateway, "a dependency failed to start", 0},
		{"removed", wake(ErrClosed), time.Minute, 0, http.StatusNotFound, "the app is gone", 0},
		{"went back to sleep", wake(ErrNotReady), time.Minute, 2500 * time.Millisecond, http.StatusServiceUnavailable, "the app went back to sleep; try again", 3},
		{"too many held", ErrTooManyHeld, time.Minute, 2500 * time.Millisecond, http.StatusServiceUnavailable, "too many requests are waiting for the app", 3},
		{"too many held, no history", ErrTooManyHeld, time.Minute, 0, http.StatusServiceUnavailable, "too many requests are waiting for the app", 1},
		{"path may not wake", ErrWakeRefused, time.Minute, 200 * time.Millisecond, http.StatusServiceUnavailable, "the app is asleep and this request does not wake it", 1},
		{"sleep while waking", ErrBusy, time.Minute, 4 * time.Second, http.StatusConflict, "the app is waking; try again when it is ready", 4},
		{"upstream refused", fmt.Errorf("%w: %w", ErrUnreachable, dial), time.Minute, 0, http.StatusBadGateway, "the app is not reachable", 0},
		{"upstream timed out", fmt.Errorf("%w: %w", ErrUnreachable, context.DeadlineExceeded), time.Minute, 0, http.StatusBadGateway, "the app is not reachable", 0},
		{"stop failed", &SleepError{Container: "app", Err: fmt.Errorf("stop: %w", pve)}, time.Minute, 0, http.StatusBadGateway, "the app failed to go to sleep", 0},
		{"stop too slow", &SleepError{Container: "app", Err: context.DeadlineExceeded}, time.Minute, 0, http.StatusGatewayTimeout, "the app is still going to sleep", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := AnswerFor(tt.err, tt.wakeTO, tt.usual)
			want := Answer{Status: tt.status, Reason: tt.reason, RetryAfter: tt.retryAfter}
			if got != want {
				t.Fatalf("AnswerFor(%v) = %+v, want %+v", tt.err, got, want)
			}
			for _, secret := range []string{"10.0.0.5", "172.18", "secret", "pve1", "105", "OCI", "dial"} {
				if strings.Contains(got.Reason, secret) {
					t.Errorf("reason %q repeats the internal %q", got.Reason, secret)
				}
			}
		})
	}
}

// TestSleepFailureIsTyped: a stop the engine refuses comes back from Sleep
// as a *SleepError that still wraps the engine's error.
func TestSleepFailureIsTyped(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	w := newTestWatcher(t, f, testSpec())
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.stopErr = errBoom
	f.mu.Unlock()
	err := w.Sleep(context.Background(), "api")
	var se *SleepError
	if !errors.As(err, &se) || !errors.Is(err, errBoom) {
		t.Fatalf("Sleep = %v, want a *SleepError wrapping the engine's error", err)
	}
	if a := w.Answer(err); a.Status != http.StatusBadGateway {
		t.Fatalf("answer %+v, want 502", a)
	}
}
