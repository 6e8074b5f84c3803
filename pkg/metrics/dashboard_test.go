package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDashboardUsesKnownMetrics keeps deploy/grafana-dashboard.json in step
// with the recorder: every sleeper_* name a panel queries must be one the
// golden file pins, and every pinned name but build_info must be on a panel.
func TestDashboardUsesKnownMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Inputs []struct {
			Name string `json:"name"`
		} `json:"__inputs"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" {
		t.Errorf("dashboard inputs %+v, want the one DS_PROMETHEUS datasource", dash.Inputs)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "metric_names.golden"))
	if err != nil {
		t.Fatal(err)
	}
	known := strings.Fields(string(golden))
	name := regexp.MustCompile(`sleeper_[a-z_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(known, b) {
						base = b
					}
				}
				if !slices.Contains(known, base) {
					t.Errorf("panel %q queries %s, which sleeper does not export", p.Title, m)
				}
				used[base] = true
			}
		}
	}
	for _, k := range known {
		if !used[k] && k != "sleeper_build_info" {
			t.Errorf("no panel shows %s", k)
		}
	}
}
