package dockertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sleeper/internal/syncbuf"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// bridges numbers the second engines' bridges. Each engine has its own
// bridge and subnet (10.231.N.0/24), so two tests, or two test processes,
// with a second engine each never delete each other's bridge. Tests never
// send traffic to these addresses: containers there publish on 127.0.0.1
// like everywhere else.
var bridges atomic.Int32

// nextBridge returns a bridge name (at most 15 bytes) and its address.
func nextBridge() (name, addr string) {
	n := (os.Getpid()*7 + int(bridges.Add(1))) % 250
	return fmt.Sprintf("br-d2-%d", n), fmt.Sprintf("10.231.%d.1/24", n)
}

// Engine is a second Docker engine on this machine, beside the main one:
// its own data and exec roots, socket and bridge (FACTS.md). The harness
// starts it and tears it down; tests stop and restart it to see sleeper
// ride out an engine that goes away.
type Engine struct {
	// Host is the engine's address for a client: unix://DIR/docker.sock.
	Host   string
	dir    string
	cfg    string
	bridge string
	log    *syncbuf.Buffer

	mu  sync.Mutex
	cmd *exec.Cmd
	// done is closed when the running dockerd exits.
	done chan struct{}
}

// SecondEngine starts a second dockerd and loads the given images into it
// from the main engine. It skips the test, saying why, when dockerd cannot
// start here (not root, no bridge, no fuse-overlayfs); it stops the engine
// and removes its bridge when the test ends.
func SecondEngine(t testing.TB, images ...string) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dockertest: a second engine needs root (dockerd, a bridge)")
	}
	for _, bin := range []string{"dockerd", "ip", "fuse-overlayfs", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("dockertest: a second engine needs %s: %v", bin, err)
		}
	}
	// Socket paths have a length limit: keep the directory short.
	dir, err := os.MkdirTemp("/tmp", "d2")
	if err != nil {
		t.Fatal(err)
	}
	bridge, bridgeAddr := nextBridge()
	e := &Engine{Host: "unix://" + filepath.Join(dir, "docker.sock"), dir: dir,
		cfg: filepath.Join(dir, "daemon.json"), bridge: bridge, log: &syncbuf.Buffer{}}
	if err := os.WriteFile(e.cfg, []byte(`{"storage-driver":"fuse-overlayfs"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("ip", "link", "del", bridge).Run() // a leftover of a killed run
	for _, args := range [][]string{
		{"link", "add", bridge, "type", "bridge"},
		{"addr", "add", bridgeAddr, "dev", bridge},
		{"link", "set", bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("dockertest: a second engine needs bridge %s: ip %v: %v: %s", bridge, args, err, out)
		}
	}
	t.Cleanup(func() {
		e.Stop(t)
		_ = exec.Command("ip", "link", "del", bridge).Run()
		_ = os.RemoveAll(dir)
	})
	if err := e.start(); err != nil {
		t.Skipf("dockertest: second dockerd does not start here: %v\n%s", err, e.logs())
	}
	for _, img := range images {
		sh := fmt.Sprintf("docker save %s | docker -H %s load", img, e.Host)
		if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
			t.Fatalf("dockertest: load %s into the second engine: %v: %s", img, err, out)
		}
	}
	return e
}

// Client returns a client of the engine, closed when the test ends.
func (e *Engine) Client(t testing.TB) *client.Client {
	t.Helper()
	return hostClient(t, e.Host)
}

// start runs dockerd and waits until it answers.
func (e *Engine) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cmd := exec.Command("dockerd", "--config-file", e.cfg,
		"--data-root", filepath.Join(e.dir, "root"), "--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "pid"), "-H", e.Host, "-b", e.bridge,
		"--iptables=false", "--ip-masq=false")
	cmd.Stdout, cmd.Stderr = e.log, e.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	e.cmd, e.done = cmd, done
	if err := awaitPing(e.Host, done, time.Minute); err != nil {
		return fmt.Errorf("dockerd: %w (state %v)", err, cmd.ProcessState)
	}
	return nil
}

// Stop ends the engine (SIGTERM, as a host shutdown does; SIGKILL after
// 30 s) and waits for it. Stopping a stopped engine does nothing.
func (e *Engine) Stop(t testing.TB) {
	e.mu.Lock()
	cmd, done := e.cmd, e.done
	e.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Log("dockertest: second dockerd killed after 30 s")
	}
}

// Restart starts the engine again after Stop.
func (e *Engine) Restart(t testing.TB) {
	t.Helper()
	if err := e.start(); err != nil {
		t.Fatalf("dockertest: restart second dockerd: %v\n%s", err, e.logs())
	}
}

func (e *Engine) logs() string { return e.log.Tail(4000) }

// awaitPing waits until the engine at host answers a ping, the process
// behind it exits (done closes), or within passes.
func awaitPing(host string, done <-chan struct{}, within time.Duration) error {
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Ping(ctx, client.PingOptions{})
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return errors.New("the process exited")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", within, err)
		}
	}
}

// hostClient returns a client of the engine at host, closed when the test
// ends.
func hostClient(t testing.TB, host string) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
