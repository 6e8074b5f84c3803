package watcher_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"sleeper/internal/watchertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/watcher"
)

// TestRegistryOlderKeepsRoute: two containers claiming one host: the older
// keeps it and the younger is listed with the conflict; once the older is
// gone the younger takes over. Bad labels leave a container unmanaged with
// its error; a ReportProblem shows in List until cleared.
func TestRegistryOlderKeepsRoute(t *testing.T) {
	t.Parallel()
	e := watchertest.NewEngine()
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: e, Log: slog.New(slog.DiscardHandler),
		Labels: labels.Options{Prefix: "sleeper", DefaultIdleTimeout: time.Hour}})
	t.Cleanup(reg.Close)
	old := labelled("old", "hosts", "app.localhost")
	young := labelled("young", "hosts", "app.localhost")
	young.Created = old.Created.Add(time.Second)
	changed := reg.Changed()
	reg.ApplyAll([]watcher.Container{young, old})
	<-changed
	if w := reg.Routes().Lookup("app.localhost"); w == nil || w.Name() != "old" {
		t.Fatalf("app.localhost routed to %v, want old", w)
	}
	if reg.Get("young") != nil {
		t.Fatal("the younger claimant is managed")
	}
	reg.Remove("old")
	if w := reg.Routes().Lookup("app.localhost"); w == nil || w.Name() != "young" {
		t.Fatalf("after the older went, app.localhost routed to %v, want young", w)
	}
	bad := labelled("bad", "idle_timeout", "soon")
	reg.Apply(bad)
	reg.ReportProblem("young", "listen", errTest)
	errs := map[string]string{}
	for _, i := range reg.List() {
		errs[i.Name] = i.Error
	}
	if !strings.Contains(errs["bad"], "idle_timeout") || reg.Get("bad") != nil {
		t.Errorf("bad labels: error %q, managed %v", errs["bad"], reg.Get("bad") != nil)
	}
	if !strings.Contains(errs["young"], "listen: ") {
		t.Errorf("reported problem not listed: %q", errs["young"])
	}
	reg.ReportProblem("young", "listen", nil)
	for _, i := range reg.List() {
		if i.Name == "young" && i.Error != "" {
			t.Errorf("cleared problem still listed: %q", i.Error)
		}
	}
}

var errTest = errString("address in use")

type errString string

func (e errString) Error() string { return string(e) }
