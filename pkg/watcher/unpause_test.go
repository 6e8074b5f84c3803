package watcher

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// dies at thaw: the process was killed (OOM, docker kill) while frozen.
type diesOnUnpause struct{ *fakeRuntime }

func (d diesOnUnpause) Unpause(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls["unpause"]++
	d.c.Status, d.c.ExitCode, d.c.FinishedAt = StatusStopped, 137, time.Now()
	return nil
}

func TestUnpausedButDeadFailsTheWake(t *testing.T) {
	f := newFake(t)
	spec := testSpec()
	spec.StopMethod = labels.StopMethodPause
	w := New(Config{Name: "app", Spec: spec, Runtime: diesOnUnpause{f}, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(w.Close)
	w.Observe(f.c)
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Sleep(context.Background(), "idle"); err != nil {
		t.Fatal(err)
	}
	_, err := w.Wait(context.Background())
	t.Logf("wake err=%v state=%s observed=%s", err, w.State(), w.Observed().Status)
	if err == nil && w.State() == StateReady {
		t.Errorf("Ready for a container the post-unpause inspect saw stopped")
	}
}
