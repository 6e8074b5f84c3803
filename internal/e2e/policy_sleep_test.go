package e2e

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sleeper/internal/await"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"sleeper/pkg/admin"
	"sleeper/pkg/metrics"
	"sleeper/pkg/watcher"
)

// The policy tests use 2 s idle timeouts: long enough for a wake on a
// loaded machine, short enough to watch several of them pass.
const policyIdle = "2s"

// TestScheduleWindowKeepsAwake: an app whose keep-warm window contains now
// stays up for several idle timeouts; the same app without the window, the
// control, sleeps after one.
func TestScheduleWindowKeepsAwake(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	warm, control := uniqueName(t, "warm"), uniqueName(t, "control")
	// 00:00-24:00 every day contains now whatever the machine's time zone.
	warmID := s.run(warm, true, nil, "hosts", warm+".localhost", "idle_timeout", policyIdle, "awake_during", "00:00-24:00")
	controlID := s.run(control, true, nil, "hosts", control+".localhost", "idle_timeout", policyIdle)
	s.waitState(warm, watcher.StateReady, 15*time.Second)
	s.waitState(control, watcher.StateReady, 15*time.Second)
	if resp, _ := s.get(warm+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("warm: status %d", resp.StatusCode)
	}
	s.waitEngine(controlID, "the control to sleep", 15*time.Second, func(st container.State) bool { return !st.Running })
	await.HoldsFor(t, 6*time.Second, "the warm app running inside its window", func() bool { return running(s.inspect(warmID)) })
	info := s.watcher(warm).Info()
	if !info.InWindow || !info.SleepsAt.IsZero() {
		t.Errorf("info: in window %v, sleeps at %v", info.InWindow, info.SleepsAt)
	}
}

// TestGroupWakesAndSleepsTogether: one request to a member starts every
// member; a member idle for its own timeout stays up while another member
// is used, and then the group goes to sleep.
func TestGroupWakesAndSleepsTogether(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	group := "g" + randomPrefix(t)
	a, b, c := uniqueName(t, "ga"), uniqueName(t, "gb"), uniqueName(t, "gc")
	aID := s.run(a, false, nil, "hosts", a+".localhost", "idle_timeout", policyIdle, "group", group)
	bID := s.run(b, false, nil, "hosts", b+".localhost", "idle_timeout", policyIdle, "group", group)
	cID := s.run(c, false, nil, "hosts", c+".localhost", "idle_timeout", policyIdle, "group", group)
	s.waitState(a, watcher.StateAsleep, 10*time.Second)
	s.waitState(b, watcher.StateAsleep, 10*time.Second)
	s.waitState(c, watcher.StateAsleep, 10*time.Second)
	if resp, _ := s.get(a+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("a: status %d", resp.StatusCode)
	}
	for _, id := range []string{bID, cID} {
		s.waitEngine(id, "every member started by one request", 15*time.Second, running)
	}
	s.waitState(b, watcher.StateReady, 15*time.Second)
	// b is used for three of a's idle timeouts: a and c, idle, stay up.
	await.HoldsFor(t, 6*time.Second, "the group up while one member is used", func() bool {
		if resp, _, err := s.do(http.MethodGet, b+".localhost", "/", nil); err != nil || resp.StatusCode != 200 {
			return false
		}
		return running(s.inspect(aID)) && running(s.inspect(cID))
	})
	for _, id := range []string{aID, bID, cID} {
		s.waitEngine(id, "the group asleep", 20*time.Second, func(st container.State) bool { return !st.Running })
	}
}

// TestBusyContainerNotStopped: a container burning CPU without requests is
// not stopped when its idle timeout passes, and is once it is quiet. The
// threshold is 1%: on a machine busy with other tests a spinning app may get
// little more than a tenth of a core, an idle one gets none.
func TestBusyContainerNotStopped(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "busy")
	host := name + ".localhost"
	id := s.run(name, true, nil, "hosts", host, "idle_timeout", policyIdle, "busy_cpu", "1%")
	s.waitState(name, watcher.StateReady, 15*time.Second)
	if resp, body, err := s.do(http.MethodPost, host, "/burn?on=1", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("burn: %v %v", err, body)
	}
	await.HoldsFor(t, 8*time.Second, "running while it burns CPU", func() bool { return running(s.inspect(id)) })
	if !strings.Contains(s.logs.String(), "sleep postponed: busy") {
		t.Fatal("no log line says why the sleep was postponed")
	}
	if resp, body, err := s.do(http.MethodPost, host, "/burn?on=0", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("stop burning: %v %v", err, body)
	}
	s.waitEngine(id, "a stop once quiet", 20*time.Second, func(st container.State) bool { return !st.Running })
}

// TestMemoryFreedShown: a container put to sleep shows the memory it used
// just before in /metrics and on the status page.
func TestMemoryFreedShown(t *testing.T) {
	t.Parallel()
	rec := metrics.New(metrics.Config{Version: "test"})
	s := startSleeper(t, stackOptions{recorder: rec})
	rec.Watch(s.reg)
	adm := httptest.NewServer(admin.NewHandler(admin.Config{Registry: s.reg, Metrics: rec.Handler(slog.New(slog.DiscardHandler)),
		Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(adm.Close)
	name := uniqueName(t, "mem")
	id := s.run(name, true, nil, "hosts", name+".localhost", "idle_timeout", policyIdle)
	s.waitState(name, watcher.StateReady, 15*time.Second)
	s.waitEngine(id, "sleep", 15*time.Second, func(st container.State) bool { return !st.Running })
	s.waitState(name, watcher.StateAsleep, 10*time.Second)
	fetch := func(path string) string {
		resp, err := http.Get(adm.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := regexp.MustCompile(`(?m)^sleeper_memory_freed_bytes\{container="` + regexp.QuoteMeta(name) + `",engine=""\} (\S+)$`).FindStringSubmatch(fetch("/metrics"))
	if m == nil {
		t.Fatalf("no sleeper_memory_freed_bytes for %s", name)
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v < 64<<10 {
		t.Fatalf("memory freed %s bytes: not a running Go app's memory", m[1])
	}
	page := fetch("/")
	mustContain(t, page, "freed by sleeping")
	row := page[strings.Index(page, ">"+name+"<"):]
	row = row[:strings.Index(row, "</tr>")]
	if !regexp.MustCompile(`class="num memory">[0-9.]+ [KMG]iB<`).MatchString(row) {
		t.Fatalf("status row shows no memory freed: %s", row)
	}
}
