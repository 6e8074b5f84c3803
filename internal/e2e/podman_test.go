package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"sleeper/internal/await"
	"sleeper/internal/dockertest"
	"sleeper/pkg/watcher"
)

// TestPodman runs the core scenarios against Podman's Docker-compatible API
// (Debian's podman, `podman system service` on its own socket), with sleeper
// pointed at it and no other flag: wake, sleep after the idle timeout, one
// start for a herd, a bad label, and a container started and stopped by hand
// noticed within seconds (the relist is a minute away: events do it).
func TestPodman(t *testing.T) {
	t.Parallel()
	img, healthImg := dockertest.Image(t), dockertest.HealthImage(t)
	pm := dockertest.StartPodman(t, img, healthImg)
	s := startSleeper(t, stackOptions{dockerHost: pm.Host})
	s.cli = pm.Client(t) // the stack's own calls (inspect, start, stop) go to Podman too
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("podman service logs:\n%s", pm.Logs())
		}
	})
	runImage := func(image, name string, start bool, env []string, kv ...string) string {
		return dockertest.Run(t, s.cli, dockertest.Spec{
			Name: name, Image: dockertest.PodmanImage(image), Labels: s.labels(kv...), Env: env,
			Publish: []string{"8080/tcp"}, Start: start, Ulimits: dockertest.PodmanUlimits(),
		})
	}
	run := func(name string, start bool, env []string, kv ...string) string {
		return runImage(img, name, start, env, kv...)
	}

	t.Run("wake and sleep", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "pwake")
		host := name + ".localhost"
		id := run(name, false, []string{"APP_NAME=" + name}, "hosts", host, "idle_timeout", "2s")
		s.waitState(name, watcher.StateAsleep, 10*time.Second)
		resp, body := s.get(host, "/")
		if resp.StatusCode != http.StatusOK || body != "hello from "+name+"\n" {
			t.Fatalf("wake: %d %q", resp.StatusCode, body)
		}
		if !running(s.inspect(id)) {
			t.Fatal("Podman does not report the woken container running")
		}
		s.waitEngine(id, "asleep on Podman after the idle timeout", 20*time.Second, exited)
		s.waitState(name, watcher.StateAsleep, 10*time.Second)
		if resp, _ := s.get(host, "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("second wake: %d", resp.StatusCode)
		}
	})

	t.Run("herd", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "pherd")
		host := name + ".localhost"
		id := run(name, false, []string{"START_DELAY=300ms"}, "hosts", host)
		s.watcher(name)
		starts, stop := dockertest.Starts(context.Background(), s.cli, id)
		defer stop()
		s.echoHerd(t, host, 50)
		exactlyOneStart(t, starts)
	})

	t.Run("bad label", func(t *testing.T) {
		t.Parallel()
		bad := uniqueName(t, "pbad")
		badID := run(bad, false, nil, "hosts", bad+".localhost", "idle_timeout", "soon")
		var errText string
		await.Eventually(t, 10*time.Second, "config error for "+bad, func() bool {
			for _, info := range s.reg.List() {
				if info.Name == bad && info.Error != "" {
					errText = info.Error
					return true
				}
			}
			return false
		})
		mustContain(t, errText, s.prefix+".idle_timeout")
		if s.reg.Get(bad) != nil {
			t.Fatal("a container with a bad label is managed")
		}
		if resp, _ := s.get(bad+".localhost", "/"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("bad container's host answered %d, want 404", resp.StatusCode)
		}
		if s.inspect(badID).Running {
			t.Fatal("a container with a bad label was started")
		}
	})

	t.Run("by hand", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "phand")
		id := run(name, false, nil, "hosts", name+".localhost")
		s.waitState(name, watcher.StateAsleep, 10*time.Second)
		if _, err := s.cli.ContainerStart(context.Background(), id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitState(name, watcher.StateReady, 10*time.Second)
		if _, err := s.cli.ContainerStop(context.Background(), id, client.ContainerStopOptions{}); err != nil {
			t.Fatal(err)
		}
		s.waitState(name, watcher.StateAsleep, 10*time.Second)
	})

	// Podman runs health checks from systemd timers; without systemd (as
	// here, and in many containers) it never runs them and the health stays
	// "starting", with no event. sleeper.health_exec has sleeper run the
	// test through Podman's exec API instead.
	t.Run("health without timers", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "phealth")
		host := name + ".localhost"
		runImage(healthImg, name, false, nil, "hosts", host, "health_exec", "true", "wake_timeout", "20s")
		s.watcher(name)
		if resp, body := s.get(host, "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("wake of a health-checked container: %d %q", resp.StatusCode, body)
		}
	})

	// A custom stop signal goes through kill and a wait on Podman (it
	// ignores stop's signal parameter): the app gets SIGINT and exits 0.
	t.Run("stop signal", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t, "psig")
		host := name + ".localhost"
		id := run(name, false, nil, "hosts", host, "idle_timeout", "1s", "stop_signal", "SIGINT")
		s.watcher(name)
		if resp, _ := s.get(host, "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("wake: %d", resp.StatusCode)
		}
		s.waitEngine(id, "asleep by SIGINT", 20*time.Second, exited)
		s.waitState(name, watcher.StateAsleep, 10*time.Second)
		if code := s.inspect(id).ExitCode; code != 0 {
			t.Fatalf("exit code %d after SIGINT, want the app's graceful 0", code)
		}
	})
}
