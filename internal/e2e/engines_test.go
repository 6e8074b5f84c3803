package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sleeper/internal/syncbuf"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"sleeper/internal/await"
	"sleeper/internal/dockertest"
)

// binSleeper runs the sleeper command with args until the test ends and
// returns its logs.
func binSleeper(t *testing.T, args ...string) *syncbuf.Buffer {
	t.Helper()
	logs := &syncbuf.Buffer{}
	cmd := exec.Command(dockertest.SleeperBinary(t), append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("sleeper did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("sleeper logs:\n%s", logs.String())
		}
	})
	return logs
}

// fetch sends a GET with the given Host and returns the status and body
// (status 0 and the error text when the request fails).
func fetch(base, host, path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func mainEngineHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// TestSeveralEngines runs one sleeper over the main engine ("local") and a
// second dockerd ("d2") holding a container of the same name. d2 is down
// when sleeper starts: local's container is served all the same, and
// d2's once d2 comes up. Then each wakes and sleeps on its own engine; d2's depends on an unmanaged container on
// local ("local:name"); with d2 stopped, local's keeps serving while d2's
// fails at once naming its engine, and serves again once d2 is back.
func TestSeveralEngines(t *testing.T) {
	t.Parallel()
	img := dockertest.Image(t)
	d2 := dockertest.SecondEngine(t, img)
	cli1, cli2 := dockertest.Client(t), d2.Client(t)
	prefix := randomPrefix(t)
	lbl := func(kv ...string) map[string]string {
		m := map[string]string{prefix + ".enable": "true"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[prefix+"."+kv[i]] = kv[i+1]
		}
		return m
	}
	name, depName := uniqueName(t, "web"), uniqueName(t, "dep")
	dep := dockertest.Run(t, cli1, dockertest.Spec{Name: depName, Image: img, Publish: []string{"8080/tcp"}})
	local := dockertest.Run(t, cli1, dockertest.Spec{Name: name, Image: img, Publish: []string{"8080/tcp"},
		Labels: lbl("hosts", "a.localhost", "port", "8080", "idle_timeout", "3s")})
	remote := dockertest.Run(t, cli2, dockertest.Spec{Name: name, Image: img, Publish: []string{"8080/tcp"},
		Labels: lbl("hosts", "b.localhost", "port", "8080", "idle_timeout", "3s", "depends_on", "local:"+depName)})
	// d2 is down and given first: the first engine once held up the others.
	d2.Stop(t)
	addr, admin := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	binSleeper(t, "--addr", addr, "--admin-addr", admin, "--label-prefix", prefix,
		"--docker-host", "d2="+d2.Host, "--docker-host", "local="+mainEngineHost())
	base := "http://" + addr
	api := func() string { _, body := fetch("http://"+admin, "", "/api/containers"); return body }
	metrics := func() string { _, body := fetch("http://"+admin, "", "/metrics"); return body }
	await.Eventually(t, 30*time.Second, "local's container served while d2 is down at start", func() bool {
		code, _ := fetch(base, "a.localhost", "/")
		return code == http.StatusOK
	})
	if m := metrics(); !strings.Contains(m, `sleeper_docker_up{engine="d2"} 0`) ||
		!strings.Contains(m, `sleeper_docker_up{engine="local"} 1`) ||
		!strings.Contains(m, `sleeper_container_state{container="`+name+`",engine="local",state="ready"} 1`) {
		t.Fatalf("/metrics with d2 down lacks docker_up per engine or local's ready state:\n%s", m)
	}
	d2.Restart(t)
	await.Eventually(t, 60*time.Second, "d2's container served once d2 comes up", func() bool {
		code, _ := fetch(base, "b.localhost", "/")
		return code == http.StatusOK
	})
	await.Eventually(t, 30*time.Second, "both engines' containers listed as local/ and d2/", func() bool {
		b := api()
		return strings.Contains(b, `"local/`+name+`"`) && strings.Contains(b, `"d2/`+name+`"`)
	})
	if m := metrics(); !strings.Contains(m, `sleeper_container_state{container="`+name+`",engine="d2",state="ready"} 1`) {
		t.Fatalf("/metrics lacks d2's container by its plain name and engine:\n%s", m)
	}

	state := dockerState(t)
	for _, c := range []struct{ host, id string }{{"b.localhost", remote}, {"a.localhost", local}} {
		if code, body := fetch(base, c.host, "/"); code != http.StatusOK {
			t.Fatalf("%s: %d %q, want 200 after a wake", c.host, code, body)
		}
	}
	if !state(cli1, local).Running || !state(cli2, remote).Running || !state(cli1, dep).Running {
		t.Fatal("after the wakes: each app should run on its own engine, and the dependency on local")
	}
	await.Eventually(t, 30*time.Second, "both asleep after their idle timeout", func() bool {
		return !state(cli1, local).Running && !state(cli2, remote).Running
	})

	d2.Stop(t)
	code, body := fetch(base, "b.localhost", "/")
	if code != http.StatusBadGateway || !strings.Contains(body, "d2") {
		t.Fatalf("d2 stopped: %d %q, want 502 naming engine d2", code, body)
	}
	if b := api(); !strings.Contains(b, "engine d2 unreachable") {
		t.Fatalf("API with d2 stopped lacks its engine's state: %s", b)
	}
	if code, body := fetch(base, "a.localhost", "/"); code != http.StatusOK {
		t.Fatalf("local's container with d2 stopped: %d %q, want 200", code, body)
	}
	d2.Restart(t)
	await.Eventually(t, 60*time.Second, "d2's container to serve again once d2 is back", func() bool {
		code, _ := fetch(base, "b.localhost", "/")
		return code == http.StatusOK
	})
}

// dockerState returns a function reading a container's engine state.
func dockerState(t *testing.T) func(cli *client.Client, id string) container.State {
	return func(cli *client.Client, id string) container.State {
		res, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("inspect %s: %v", id, err)
		}
		return *res.Container.State
	}
}
