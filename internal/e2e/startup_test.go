package e2e

import (
	"sleeper/internal/await"
	"sleeper/internal/syncbuf"

	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"sleeper/internal/dockertest"
)

// TestStartWithEngineAway runs the sleeper command against an engine it
// cannot reach yet. The admin listener is up anyway: /healthz answers 503
// with the reason and sleeper_docker_up is 0; once the engine is reachable,
// 200 and 1. A later outage shows in the gauge at once, while /healthz stays
// 200 within its bound (60 s).
func TestStartWithEngineAway(t *testing.T) {
	t.Parallel()
	bin := dockertest.SleeperBinary(t)
	engine := dockertest.NewSocketProxy(t, "")
	engine.Cut()
	admin := "http://127.0.0.1:" + freePort(t)
	logs := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--admin-addr", strings.TrimPrefix(admin, "http://"),
		"--docker-host", engine.Host(), "--label-prefix", randomPrefix(t))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("sleeper exited with %v after SIGTERM", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("sleeper did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("sleeper logs:\n%s", logs.String())
		}
	})

	fetch := func(path string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, admin+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var code int
	var body string
	await.Eventually(t, 15*time.Second, "the admin listener to open while the engine is away",
		func() bool { code, body = fetch("/healthz"); return code != 0 })
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for the docker engine") {
		t.Fatalf("/healthz with the engine away: %d %q, want 503 waiting for the docker engine", code, body)
	}
	if _, m := fetch("/metrics"); !strings.Contains(m, "\nsleeper_docker_up{engine=\"\"} 0\n") {
		t.Fatalf("/metrics with the engine away lacks sleeper_docker_up 0")
	}

	engine.Restore()
	await.Eventually(t, 20*time.Second, "/healthz to answer 200 once the engine is reachable",
		func() bool { code, body = fetch("/healthz"); return code == http.StatusOK })
	if _, m := fetch("/metrics"); !strings.Contains(m, "\nsleeper_docker_up{engine=\"\"} 1\n") {
		t.Fatalf("/metrics with the engine back lacks sleeper_docker_up 1")
	}

	engine.Cut()
	await.Eventually(t, 20*time.Second, "sleeper_docker_up 0 after the engine went away", func() bool {
		_, m := fetch("/metrics")
		return strings.Contains(m, "\nsleeper_docker_up{engine=\"\"} 0\n")
	})
	if code, body = fetch("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz within the outage bound: %d %q, want 200", code, body)
	}
	engine.Restore()
	await.Eventually(t, 20*time.Second, "sleeper_docker_up 1 after the engine came back", func() bool {
		_, m := fetch("/metrics")
		return strings.Contains(m, "\nsleeper_docker_up{engine=\"\"} 1\n")
	})
}
