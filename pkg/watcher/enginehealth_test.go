package watcher

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEngineHealthStates walks sleeper's own health through start, discovery,
// a short outage (still healthy), a long one (unhealthy, with the reason) and
// recovery, and checks the up/down changes reported for the gauge.
func TestEngineHealthStates(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	var changes []bool
	h := NewEngineHealth(EngineHealthConfig{
		Engine:    "docker engine",
		DownAfter: 10 * time.Second,
		Now:       func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		OnChange:  func(up bool) { changes = append(changes, up) },
	})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	refused := errors.New("connection refused")

	steps := []struct {
		name    string
		do      func()
		want    error // nil: healthy
		wantMsg string
		wantUp  bool
	}{
		{"before the engine answers", func() {}, ErrEngineWaiting, "waiting for the docker engine", false},
		{"engine refuses", func() { h.EngineDown(refused) }, ErrEngineWaiting, "connection refused", false},
		{"still refusing long after start", func() { advance(time.Hour) }, ErrEngineWaiting, "waiting", false},
		{"engine answers, not listed", func() { h.EngineUp() }, ErrDiscovering, "discovering", true},
		{"listed", func() { h.Synced() }, nil, "", true},
		{"short outage", func() { h.EngineDown(refused); advance(5 * time.Second) }, nil, "", false},
		{"still failing within the bound", func() { h.EngineDown(refused); advance(5 * time.Second) }, nil, "", false},
		{"past the bound", func() { advance(time.Second) }, ErrEngineDown, "unreachable for 11s: connection refused", false},
		{"back", func() { h.EngineUp() }, nil, "", true},
		{"a new outage counts from its own start", func() { h.EngineDown(refused); advance(9 * time.Second) }, nil, "", false},
	}
	for _, s := range steps {
		s.do()
		err := h.Check()
		switch {
		case s.want == nil && err != nil:
			t.Fatalf("%s: %v, want healthy", s.name, err)
		case s.want != nil && !errors.Is(err, s.want):
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		case s.want != nil && !strings.Contains(err.Error(), s.wantMsg):
			t.Fatalf("%s: %q lacks %q", s.name, err, s.wantMsg)
		}
		if h.Up() != s.wantUp {
			t.Fatalf("%s: Up() = %v, want %v", s.name, h.Up(), s.wantUp)
		}
	}
	if want := []bool{true, false, true, false}; !slices.Equal(changes, want) {
		t.Errorf("OnChange calls %v, want %v", changes, want)
	}
}

func TestEngineHealthNilIgnoresReports(t *testing.T) {
	t.Parallel()
	var h *EngineHealth
	h.EngineUp()
	h.EngineDown(errors.New("x"))
	h.Synced()
}
