package e2e

import (
	"sleeper/internal/await"

	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
	"sleeper/pkg/watcher"
)

// TestComposeRecreateKeepsRoute replays what `docker compose up` does when a
// service's config changes: create <id>_<name>, stop the old one, remove it,
// rename the new one, start it. The host keeps answering, now from the new
// container.
func TestComposeRecreateKeepsRoute(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{})
	name := uniqueName(t, "recreate")
	host := name + ".localhost"
	oldID := s.run(name, true, []string{"APP_NAME=old"}, "hosts", host)
	s.waitState(name, watcher.StateReady, 10*time.Second)
	if _, body := s.get(host, "/"); body != "hello from old\n" {
		t.Fatalf("before recreate: %q", body)
	}

	ctx := context.Background()
	tmp := oldID[:12] + "_" + name
	newID := dockertest.Run(t, s.cli, dockertest.Spec{
		Name: tmp, Image: dockertest.Image(t), Labels: s.labels("hosts", host),
		Env: []string{"APP_NAME=new"}, Publish: []string{"8080/tcp"},
	})
	if _, err := s.cli.ContainerStop(ctx, oldID, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.ContainerRemove(ctx, oldID, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.ContainerRename(ctx, newID, client.ContainerRenameOptions{NewName: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.ContainerStart(ctx, newID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, 10*time.Second, "the watcher to follow the new container", func() bool {
		w := s.reg.Get(name)
		return w != nil && w.ID() == newID && w.State() == watcher.StateReady
	})
	if _, body := s.get(host, "/"); body != "hello from new\n" {
		t.Fatalf("after recreate: %q", body)
	}
	if s.reg.Get(tmp) != nil {
		t.Fatal("the temporary name is still managed")
	}
}

// TestSleeperRestartTouchesNothing: stopping sleeper leaves a running
// container running; a new sleeper neither starts nor stops anything at
// start, and gives the awake container a fresh idle timer.
func TestSleeperRestartTouchesNothing(t *testing.T) {
	t.Parallel()
	first := startSleeper(t, stackOptions{})
	awake := uniqueName(t, "awake")
	asleep := uniqueName(t, "asleep")
	awakeID := first.run(awake, true, nil, "hosts", awake+".localhost", "idle_timeout", "3s")
	asleepID := first.run(asleep, false, nil, "hosts", asleep+".localhost", "idle_timeout", "3s")
	first.waitState(awake, watcher.StateReady, 10*time.Second)
	first.waitState(asleep, watcher.StateAsleep, 10*time.Second)
	first.stop()
	if st := first.inspect(awakeID); !running(st) {
		t.Fatal("stopping sleeper stopped a container")
	}

	starts, stopStarts := dockertest.Starts(context.Background(), first.cli, awakeID)
	defer stopStarts()
	restarted := time.Now()
	second := startSleeper(t, stackOptions{prefix: first.prefix})
	second.waitState(awake, watcher.StateReady, 10*time.Second)
	second.waitState(asleep, watcher.StateAsleep, 10*time.Second)
	if st := second.inspect(asleepID); st.Running {
		t.Fatal("a new sleeper started a sleeping container")
	}
	// Fresh idle timer: it sleeps about 3 s after the restart, not earlier.
	second.waitEngine(awakeID, "idle sleep after restart", 15*time.Second, exited)
	if el := time.Since(restarted); el < 3*time.Second {
		t.Fatalf("slept %s after restart, before a fresh 3 s idle timeout", el)
	}
	if n := starts(); n != 0 {
		t.Fatalf("%d starts during the restart, want 0", n)
	}
}

// TestListenPortAndDomainDefault: a sleeper.listen port sends every request
// to its container whatever the Host; --domain gives <name>.<domain>.
func TestListenPortAndDomainDefault(t *testing.T) {
	t.Parallel()
	s := startSleeper(t, stackOptions{domain: "apps.test"})
	name := uniqueName(t, "listen")
	port := freePort(t)
	s.run(name, false, []string{"APP_NAME=" + name}, "listen", port)
	s.watcher(name)
	var resp *http.Response
	await.Eventually(t, 10*time.Second, "an answer on the listen port", func() bool {
		r, err := http.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		resp = r
		return string(b) == "hello from "+name+"\n"
	})
	if resp.StatusCode != 200 {
		t.Fatalf("listen port: %d", resp.StatusCode)
	}
	if _, body := s.get(name+".apps.test", "/"); body != "hello from "+name+"\n" {
		t.Fatalf("default host %s.apps.test: %q", name, body)
	}
}
