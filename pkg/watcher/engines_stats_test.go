package watcher

import (
	"context"
	"testing"
)

type statsRuntime struct {
	Runtime
	u Usage
}

func (s statsRuntime) Stats(context.Context, string, bool) (Usage, error) { return s.u, nil }

// TestEngineWrapperPassesStats: a named engine's runtime is wrapped; its
// usage must still reach the busy guard and the memory freed by a sleep.
func TestEngineWrapperPassesStats(t *testing.T) {
	t.Parallel()
	for _, rt := range []Runtime{statsRuntime{u: Usage{MemoryBytes: 42}}} {
		s, ok := wrapEngine("d2", rt, nil).(Stats)
		if !ok {
			t.Fatal("the wrapped runtime hides Stats")
		}
		if u, err := s.Stats(context.Background(), "id", false); err != nil || u.MemoryBytes != 42 {
			t.Fatalf("Stats = %+v, %v; want 42 bytes", u, err)
		}
	}
	s := wrapEngine("d2", newFake(t), nil).(Stats)
	if _, err := s.Stats(context.Background(), "id", false); err == nil {
		t.Fatal("a runtime without stats answered usage")
	}
}
