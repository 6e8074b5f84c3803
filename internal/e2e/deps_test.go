package e2e

import (
	"sleeper/internal/await"

	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"sleeper/internal/dockertest"
)

func startedAt(t *testing.T, st container.State) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, st.StartedAt)
	if err != nil {
		t.Fatalf("StartedAt %q: %v", st.StartedAt, err)
	}
	return ts
}

// TestDependencyChain: app → mid → db wakes db first, then mid, then app.
func TestDependencyChain(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	db, mid, app := uniqueName(t, "db"), uniqueName(t, "mid"), uniqueName(t, "app")
	dbID := s.run(db, false, nil, "hosts", db+".localhost")
	midID := s.run(mid, false, nil, "hosts", mid+".localhost", "depends_on", db)
	appID := s.run(app, false, []string{"APP_NAME=" + app}, "hosts", app+".localhost", "depends_on", mid)
	s.watcher(app)
	s.watcher(mid)
	s.watcher(db)
	resp, body := s.get(app+".localhost", "/")
	if resp.StatusCode != 200 || body != "hello from "+app+"\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	tdb, tmid, tapp := startedAt(t, s.inspect(dbID)), startedAt(t, s.inspect(midID)), startedAt(t, s.inspect(appID))
	if !tdb.Before(tmid) || !tmid.Before(tapp) {
		t.Fatalf("start order db=%s mid=%s app=%s, want db < mid < app", tdb, tmid, tapp)
	}
	events, _ := s.watcher(app).Progress()
	var types []string
	for _, e := range events {
		types = append(types, string(e.Type))
	}
	mustContain(t, strings.Join(types, ","), "waking,dependency_waking,dependency_ready,started,waiting_ready,ready")
}

// TestDependencyDiamond: two branches share one database, started once.
func TestDependencyDiamond(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	db, left, right, app := uniqueName(t, "db"), uniqueName(t, "left"), uniqueName(t, "right"), uniqueName(t, "app")
	dbID := s.run(db, false, []string{"START_DELAY=300ms"}, "hosts", db+".localhost")
	s.run(left, false, nil, "hosts", left+".localhost", "depends_on", db)
	s.run(right, false, nil, "hosts", right+".localhost", "depends_on", db)
	s.run(app, false, nil, "hosts", app+".localhost", "depends_on", left+","+right)
	for _, n := range []string{db, left, right, app} {
		s.watcher(n)
	}
	starts, stop := dockertest.Starts(context.Background(), s.cli, dbID)
	defer stop()
	// Two apps waking at once share the database's wake too.
	var wg sync.WaitGroup
	for _, host := range []string{app, left} {
		wg.Go(func() {
			if resp, body := s.get(host+".localhost", "/"); resp.StatusCode != 200 {
				t.Errorf("%s: %d %q", host, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	exactlyOneStart(t, starts)
}

// TestSharedDependencySleepsLast: db is used by a fast and a slow sleeper;
// it stays up while either is awake and sleeps after both.
func TestSharedDependencySleepsLast(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	db, fast, slow := uniqueName(t, "db"), uniqueName(t, "fast"), uniqueName(t, "slow")
	dbID := s.run(db, false, nil, "hosts", db+".localhost", "idle_timeout", "1s")
	fastID := s.run(fast, false, nil, "hosts", fast+".localhost", "idle_timeout", "1s", "depends_on", db)
	slowID := s.run(slow, false, nil, "hosts", slow+".localhost", "idle_timeout", "4s", "depends_on", db)
	for _, n := range []string{db, fast, slow} {
		s.watcher(n)
	}
	for _, n := range []string{fast, slow} {
		if resp, body := s.get(n+".localhost", "/"); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q", n, resp.StatusCode, body)
		}
	}
	s.waitEngine(fastID, "fast asleep", 10*time.Second, exited)
	if st := s.inspect(dbID); !running(st) {
		t.Fatal("db slept while slow, which depends on it, is awake")
	}
	s.waitEngine(slowID, "slow asleep", 15*time.Second, exited)
	s.waitEngine(dbID, "db asleep after its last dependent", 10*time.Second, exited)
	if st := s.inspect(slowID); st.Running {
		t.Fatal("slow running after db slept")
	}
}

// TestDependencyHealthy: ":healthy" starts the app only after the database's
// first passing health check.
func TestDependencyHealthy(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	db, app := uniqueName(t, "db"), uniqueName(t, "app")
	dbID := dockertest.Run(t, s.cli, dockertest.Spec{
		Name: db, Image: dockertest.HealthImage(t), Labels: s.labels("hosts", db+".localhost"),
		Publish: []string{"8080/tcp"},
	})
	appID := s.run(app, false, nil, "hosts", app+".localhost", "depends_on", db+":healthy")
	s.watcher(app)
	s.watcher(db)
	if resp, body := s.get(app+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	st := s.inspect(dbID)
	if st.Health == nil || len(st.Health.Log) == 0 {
		t.Fatal("db has no health log")
	}
	var firstHealthy time.Time
	for _, r := range st.Health.Log {
		if r.ExitCode == 0 {
			firstHealthy = r.End
			break
		}
	}
	if firstHealthy.IsZero() || startedAt(t, s.inspect(appID)).Before(firstHealthy) {
		t.Fatalf("app started at %s, before db's first healthy probe at %s", startedAt(t, s.inspect(appID)), firstHealthy)
	}
}

// TestUnmanagedAndCrossProjectDependencies: a dependency without sleeper
// labels is started when needed and stopped after its last dependent sleeps
// only if sleeper started it; one already running is left running. A
// dependency in another compose project is named project/service.
func TestUnmanagedAndCrossProjectDependencies(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	cold, warm, app := uniqueName(t, "cold"), uniqueName(t, "warm"), uniqueName(t, "app")
	project := strings.ToLower(uniqueName(t, "other"))
	coldID := dockertest.Run(t, s.cli, dockertest.Spec{Name: cold, Image: dockertest.Image(t)})
	warmID := dockertest.Run(t, s.cli, dockertest.Spec{
		Name: warm, Image: dockertest.Image(t), Start: true,
		Labels: map[string]string{"com.docker.compose.project": project, "com.docker.compose.service": "cache"},
	})
	appID := s.run(app, false, nil, "hosts", app+".localhost", "idle_timeout", "1s",
		"depends_on", cold+","+project+"/cache")
	s.watcher(app)
	if resp, body := s.get(app+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !running(s.inspect(coldID)) {
		t.Fatal("unmanaged dependency was not started")
	}
	s.waitEngine(appID, "app asleep", 10*time.Second, exited)
	s.waitEngine(coldID, "the dependency sleeper started to be stopped", 15*time.Second, exited)
	if !running(s.inspect(warmID)) {
		t.Fatal("a dependency that was already running was stopped")
	}
}

// TestDependencyErrors: a cycle is a config error on each member and nobody
// else; a missing dependency fails the wake with 502, named in the admin
// API but not to the client.
func TestDependencyErrors(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	a, b, ok, lost := uniqueName(t, "a"), uniqueName(t, "b"), uniqueName(t, "ok"), uniqueName(t, "lost")
	s.run(a, false, nil, "hosts", a+".localhost", "depends_on", b)
	s.run(b, false, nil, "hosts", b+".localhost", "depends_on", a)
	s.run(ok, false, nil, "hosts", ok+".localhost")
	s.run(lost, false, nil, "hosts", lost+".localhost", "depends_on", "nope-"+lost)
	s.watcher(ok)
	s.watcher(lost)
	await.Eventually(t, 10*time.Second, "cycle errors on both members", func() bool {
		n := 0
		for _, info := range s.reg.List() {
			if (info.Name == a || info.Name == b) && strings.Contains(info.Error, "dependency cycle") {
				n++
			}
		}
		return n == 2
	})
	if resp, _ := s.get(ok+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("unrelated container: %d", resp.StatusCode)
	}
	resp, body := s.get(lost+".localhost", "/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("missing dependency: %d %q, want 502", resp.StatusCode, body)
	}
	// The public answer says what failed, not which dependency: the
	// operator finds the name in the log and the admin API.
	mustContain(t, body, "a dependency failed to start")
	mustNotContain(t, body, "nope-")
	var errText string
	for _, info := range s.reg.List() {
		if info.Name == lost {
			errText = info.Error
		}
	}
	mustContain(t, errText, "dependency nope-"+lost+" not found")
	if s.reg.Get(a) != nil || s.reg.Get(b) != nil {
		t.Fatal("containers in a cycle are managed")
	}
}

// TestDependencyNeverAnIDPrefix: depends_on names a container exactly or a
// compose service, never a container whose ID merely begins with the name
// (the engine's inspect would accept it), nor one whose name contains it.
func TestDependencyNeverAnIDPrefix(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	victim, app, lost := uniqueName(t, "victim"), uniqueName(t, "app"), uniqueName(t, "lost")
	victimID := dockertest.Run(t, s.cli, dockertest.Spec{Name: victim, Image: dockertest.Image(t)})
	decoyID := dockertest.Run(t, s.cli, dockertest.Spec{Name: lost + "-db-decoy", Image: dockertest.Image(t)})
	prefix := victimID[:12] // unique on the engine, so its inspect resolves it
	s.run(app, false, nil, "hosts", app+".localhost", "depends_on", prefix)
	s.run(lost, false, nil, "hosts", lost+".localhost", "depends_on", lost+"-db")
	s.watcher(app)
	s.watcher(lost)
	for host, dep := range map[string]string{app: prefix, lost: lost + "-db"} {
		resp, body := s.get(host+".localhost", "/")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s: %d %q, want 502", host, resp.StatusCode, body)
		}
		mustContain(t, body, "a dependency failed to start")
		errText := ""
		for _, info := range s.reg.List() {
			if info.Name == host {
				errText = info.Error
			}
		}
		mustContain(t, errText, "dependency "+dep+" not found")
	}
	for _, id := range []string{victimID, decoyID} {
		if st := s.inspect(id); st.Running || !startedAt(t, st).IsZero() {
			t.Fatalf("container %s was started: %+v", id[:12], st)
		}
	}
}
