package e2e

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"sleeper/internal/await"
	"sleeper/pkg/metrics"
	"sleeper/pkg/watcher"
)

// TestProxmoxMemoryFreed: a stub's LXC put to sleep shows in /metrics the
// memory PVE's status/current reported for it just before.
func TestProxmoxMemoryFreed(t *testing.T) {
	t.Parallel()
	pve, app := newFakePVE(t)
	pve.AddLXC("pve1", 107, "paperless", netip.MustParseAddr("127.0.0.2"))
	pve.SetUsage(107, 300<<20, 0.01, 2)
	rec := metrics.New(metrics.Config{Version: "test"})
	s := startSleeper(t, stackOptions{pve: pve, recorder: rec})
	rec.Watch(s.reg)
	srv := httptest.NewServer(rec.Handler(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	name := uniqueName(t, "paperless")
	host := name + ".localhost"
	s.stub(name, "pve1", 107, "hosts", host, "port", app.port, "idle_timeout", "2s")
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	if resp, _ := s.get(host, "/"); resp.StatusCode != 200 {
		t.Fatalf("wake: status %d", resp.StatusCode)
	}
	await.Eventually(t, 15*time.Second, "idle shutdown", func() bool { return pve.Status("pve1", 107) == "stopped" })
	s.waitState(name, watcher.StateAsleep, 5*time.Second)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := regexp.MustCompile(`(?m)^sleeper_memory_freed_bytes\{container="` + regexp.QuoteMeta(name) + `",engine=""\} 3\.145728e\+08$`)
	if !want.Match(body) {
		t.Fatalf("no sleeper_memory_freed_bytes of 300 MiB for %s in:\n%s", name, sleeperLines(string(body)))
	}
}
