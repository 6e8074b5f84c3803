package metrics

import (
	"bufio"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExpositionGolden pins the whole sleeper_* text of /metrics for a busy
// scenario: every series a container has, zeros included, rare outcomes and
// results, a broken and a forgotten container. How the recorder stores its
// counts may change; what Prometheus reads must not.
// Regenerate with: go test ./pkg/metrics -run ExpositionGolden -update
func TestExpositionGolden(t *testing.T) {
	r, clk := newTestRecorder(t)
	r.Watch(fakeSource{
		{Name: "app", Managed: true, LastActivity: time.Unix(1700000000, 0), InFlight: 2},
		{Name: "idle", Managed: true},
		{Name: "conflict", Managed: false},
	})
	exercise(r, "app")
	r.DockerUp("", false)
	r.Request("app", "proxied")
	r.Request("app", "future_outcome")
	r.Wake("app", "cancelled", time.Second)
	r.Wake("app", "timeout", time.Minute)
	r.Held("app", 3)
	r.ConfigError("idle", false)
	r.ConfigError("conflict", false)
	r.ConfigError("bad", true)
	r.Request("bad", "rejected")
	r.ConfigError("gone", false)
	r.Request("gone", "proxied")
	r.Forget("gone")
	r.Request("gone", "proxied") // late: must not bring it back
	r.Request("late", "held")    // never configured: still counted
	clk.advance(90 * time.Second)

	rw := httptest.NewRecorder()
	r.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rw, httptest.NewRequest("GET", "/metrics", nil))
	var b strings.Builder
	sc := bufio.NewScanner(rw.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "sleeper_") && !strings.Contains(line, "sleeper_build_info") {
			b.WriteString(line + "\n")
		}
	}
	got := b.String()
	path := filepath.Join("testdata", "exposition.golden")
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
		t.Errorf("/metrics changed:\n--- got\n%s--- want\n%s", got, want)
	}
}
