package metrics

import (
	"strings"
	"testing"
	"time"

	"sleeper/pkg/watcher"
)

// TestEngineLabel checks that, with several engines, every per-container
// series names the container by its plain name and its engine in the
// engine label, so that two engines' containers of one name stay apart and
// a dashboard's container filter matches them both; and that Forget deletes
// one engine's series only.
func TestEngineLabel(t *testing.T) {
	t.Parallel()
	r, _ := newTestRecorder(t)
	local, nas := watcher.Key("local", "app"), watcher.Key("nas", "app")
	r.Watch(fakeSource{{Name: local, Managed: true, LastActivity: time.Now()}, {Name: nas, Managed: true, LastActivity: time.Now()}})
	for _, k := range []string{local, nas} {
		exercise(r, k)
		r.SleepPostponed(k, "busy")
	}
	r.Wake(nas, "success", time.Second)
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "sleeper_") || mf.GetName() == "sleeper_build_info" ||
			mf.GetName() == "sleeper_docker_up" || mf.GetName() == "sleeper_docker_event_reconnects_total" {
			continue
		}
		engines := map[string]bool{}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["container"] != "app" {
				t.Errorf("%s: container=%q, want the plain name app", mf.GetName(), labels["container"])
			}
			engines[labels["engine"]] = true
		}
		if !engines["local"] || !engines["nas"] || len(engines) != 2 {
			t.Errorf("%s: engine label values %v, want local and nas", mf.GetName(), engines)
		}
	}
	r.Forget(nas)
	r.Watch(fakeSource{{Name: local, Managed: true}}) // the registry forgets it too
	if n := countEngineSeries(t, r, "local"); n == 0 {
		t.Errorf("Forget(nas/app) deleted local/app's series")
	}
	if n := countEngineSeries(t, r, "nas"); n != 0 {
		t.Errorf("Forget(nas/app) left %d of its series", n)
	}
}

// countEngineSeries counts the gathered series of an engine's containers.
func countEngineSeries(t *testing.T, r *Recorder, engine string) int {
	t.Helper()
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if labelMap(m)[labelEngine] == engine {
				n++
			}
		}
	}
	return n
}
