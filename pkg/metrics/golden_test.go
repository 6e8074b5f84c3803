package metrics

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestMetricNamesGolden pins every sleeper_* metric name: renaming one breaks
// dashboards and alerts, so it must be a deliberate change (docs/admin.md lists them).
// Regenerate with: go test ./pkg/metrics -run Golden -update
func TestMetricNamesGolden(t *testing.T) {
	r, _ := newTestRecorder(t)
	r.Watch(fakeSource{{Name: "app", Managed: true, LastActivity: time.Now()}})
	exercise(r, "app")
	r.DockerUp("", false)
	r.ConfigError("bad", true)
	r.Wake("app", "timeout", time.Minute)
	r.Reconnect()
	r.SleepPostponed("app", "busy")
	r.State("app", watcher.StateAsleep, watcher.StateWaking)

	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "sleeper_") {
			names = append(names, mf.GetName())
		}
	}
	slices.Sort(names)
	got := strings.Join(names, "\n") + "\n"

	path := filepath.Join("testdata", "metric_names.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("metric names changed (run with -update if deliberate)\n--- got\n%s--- want\n%s", got, want)
	}
}
