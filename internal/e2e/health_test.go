package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"sleeper/internal/dockertest"
)

// healthURLTest is an exec-form health test that fetches a URL, as
// `curl -f http://localhost:8080/healthz` would in an image with curl.
var healthURLTest = []string{"CMD", "/app", "-healthcheck", "http://localhost:8080/healthz"}

// healthRun creates an app container with the given health check, managed
// by s, its port 8080 published on loopback.
func (s *stack) healthRun(name string, hc *container.HealthConfig, env []string, kv ...string) string {
	s.t.Helper()
	return dockertest.Run(s.t, s.cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(s.t), Labels: s.labels(kv...),
		Env: env, Publish: []string{"8080/tcp"}, Healthcheck: hc,
	})
}

// engineHasNotProbed fails the test unless the engine's health check of id
// has not run yet: status "starting" and no probe in its log. A request
// answered while this holds was answered without the engine's event.
func (s *stack) engineHasNotProbed(id string) {
	s.t.Helper()
	st := s.inspect(id)
	if st.Health == nil || st.Health.Status != container.Starting || len(st.Health.Log) != 0 {
		var status string
		var probes int
		if st.Health != nil {
			status, probes = string(st.Health.Status), len(st.Health.Log)
		}
		s.t.Fatalf("answered after the engine's health probe (status %q, %d probes): the wake waited for the engine's interval", status, probes)
	}
}

// TestHealthURLWakesAtAppSpeed: an image whose 30 s-interval health test
// names a URL is answered as soon as that URL passes, before the engine's
// first probe (one interval after the start) could have run.
func TestHealthURLWakesAtAppSpeed(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "hcurl")
	host := name + ".localhost"
	id := s.healthRun(name, &container.HealthConfig{Test: healthURLTest, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3},
		[]string{"APP_NAME=" + name}, "hosts", host)
	s.watcher(name)
	resp, body := s.get(host, "/")
	if resp.StatusCode != 200 || body != "hello from "+name+"\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	s.engineHasNotProbed(id)
	if got := s.watcher(name).Info().Readiness; got != "healthcheck-url http://localhost:8080/healthz" {
		t.Fatalf("readiness %q", got)
	}
}

// TestHealthURLNeverEarly: an app whose / answers at once but whose health
// test fails for 1.5 s more is not answered before its test passes: the
// first request of the wake, to the health URL itself, gets 200.
func TestHealthURLNeverEarly(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "hcslow")
	host := name + ".localhost"
	id := s.healthRun(name, &container.HealthConfig{Test: healthURLTest, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3},
		[]string{"APP_NAME=" + name, "HEALTHY_AFTER=1.5s"}, "hosts", host)
	s.watcher(name)
	resp, body := s.get(host, "/healthz")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first answer of the wake: %d %q, want the passing health test's 200", resp.StatusCode, body)
	}
	s.engineHasNotProbed(id)
}

// noURLTest is a health test that names no URL (like pg_isready or a script).
var noURLTest = []string{"CMD", "/app", "-healthcheck"}

// TestHealthExecOptIn: a test that names no URL runs through the engine's
// exec API with sleeper.health_exec=true: answered before the engine's first
// probe.
func TestHealthExecOptIn(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "hcexec")
	host := name + ".localhost"
	id := s.healthRun(name, &container.HealthConfig{Test: noURLTest, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3},
		nil, "hosts", host, "health_exec", "true")
	s.watcher(name)
	if resp, body := s.get(host, "/"); resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	s.engineHasNotProbed(id)
	if got := s.watcher(name).Info().Readiness; got != "healthcheck-exec" {
		t.Fatalf("readiness %q", got)
	}
}

// TestHealthExecNotWithoutOptIn: without sleeper.health_exec the wake of a
// container whose test names no URL waits for the engine's event, and
// sleeper says once that the interval bounds the wake, and how to fix it.
func TestHealthExecNotWithoutOptIn(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "hcevent")
	host := name + ".localhost"
	id := s.healthRun(name, &container.HealthConfig{Test: noURLTest, Interval: 3 * time.Second, Timeout: 5 * time.Second, Retries: 3},
		nil, "hosts", host)
	s.watcher(name)
	if resp, body := s.get(host, "/"); resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	st := s.inspect(id)
	if st.Health == nil || st.Health.Status != container.Healthy || len(st.Health.Log) == 0 {
		t.Fatalf("answered before the engine's first probe (health %+v): exec used without the opt-in?", st.Health)
	}
	if got := s.watcher(name).Info().Readiness; got != "healthcheck-event" {
		t.Fatalf("readiness %q", got)
	}
	logs := s.logs.String()
	if n := strings.Count(logs, "wake is bound by the health-check interval"); n != 1 || !strings.Contains(logs, "sleeper.health_exec=true") {
		t.Fatalf("want one warning naming the fix, got %d in:\n%s", n, logs)
	}
}

// TestReadyPathSendsHostName: an app that answers 400 unless Host is one of
// its allowed hosts (Django's ALLOWED_HOSTS) becomes ready through a
// ready_path probe, which sends the container's first host name.
func TestReadyPathSendsHostName(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "allowed")
	host := name + ".localhost"
	s.run(name, false, []string{"APP_NAME=" + name, "ALLOWED_HOSTS=" + host},
		"hosts", host, "ready_path", "/healthz", "wake_timeout", "10s")
	s.watcher(name)
	resp, body := s.get(host, "/")
	if resp.StatusCode != 200 || body != "hello from "+name+"\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// TestDependencyHealthyFastPath: ":healthy" follows the dependency's health
// URL as a wake does, managed or not: the dependent is answered before the
// engine's first probe of its 30 s-interval dependency.
func TestDependencyHealthyFastPath(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	hc := &container.HealthConfig{Test: healthURLTest, Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3}
	db, cache, app := uniqueName(t, "db"), uniqueName(t, "cache"), uniqueName(t, "app")
	dbID := s.healthRun(db, hc, []string{"HEALTHY_AFTER=500ms"}, "hosts", db+".localhost")
	cacheID := dockertest.Run(t, s.cli, dockertest.Spec{
		Name: cache, Image: dockertest.Image(t), Publish: []string{"8080/tcp"}, Healthcheck: hc,
	})
	s.run(app, false, nil, "hosts", app+".localhost", "depends_on", db+":healthy,"+cache+":healthy")
	s.watcher(app)
	s.watcher(db)
	if resp, body := s.get(app+".localhost", "/"); resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	s.engineHasNotProbed(dbID)
	s.engineHasNotProbed(cacheID)
}
