package watcher

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

func cutContainer(name string) Container {
	return Container{
		ID: name + "-id", Name: name, Status: StatusStopped, Created: time.Now(), InspectedAt: time.Now(),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": name + ".localhost"},
	}
}

// TestRelistCutShortQueuesEverything: a relist whose session ends before it
// applied its batch reports so, and queues every name it had, so that none
// is lost and discovery is not taken as done. (In-package: it reads the
// reconciler's queue; no engine is called, so it needs no fake.)
func TestRelistCutShortQueuesEverything(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	reg := NewRegistry(RegistryConfig{Log: log, Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	rc := NewReconciler(ReconcilerConfig{Registry: reg, Log: log, Prefix: "sleeper"})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if rc.relist(ctx, []Container{cutContainer("fast"), cutContainer("slow")}, time.Now()) {
		t.Fatal("a relist cut short reported itself complete")
	}
	if !rc.q.has("fast") || !rc.q.has("slow") {
		t.Fatal("a relist cut short dropped names instead of queueing them")
	}
	if names := reg.Names(); len(names) != 0 {
		t.Fatalf("a relist cut short applied %v", names)
	}
}
