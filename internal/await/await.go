// Package await is the test kit's one way to wait: poll a condition until it
// holds, within a deadline, never a bare sleep and never a duration asserted.
//
// It is a package of its own, apart from internal/watchertest, because it
// imports nothing of sleeper: pkg/watcher's in-package tests can use it
// without the import cycle that watchertest (which imports pkg/watcher)
// would make.
package await

import (
	"testing"
	"time"
)

// every is how often a condition is checked: often enough that a test is not
// slowed, rarely enough that a busy condition does not starve the code under test.
const every = 2 * time.Millisecond

// Eventually fails the test if cond does not hold within d. what names the
// awaited condition in the failure.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(every)
	}
}

// HoldsFor fails the test if cond is false at any check during d: the
// converse of Eventually, for "this must not happen".
func HoldsFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(every) {
		if !cond() {
			t.Fatalf("not %s", what)
		}
	}
}
