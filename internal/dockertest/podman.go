package dockertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sleeper/internal/syncbuf"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Podman is Podman's Docker-compatible API service on its own socket,
// started by the harness for one test (`podman system service --time=0`).
//
// What it takes on this machine (Debian's podman 4.3.1, rootful):
//   - No cgroup-manager or runtime flag: the defaults (runc, cgroupfs as
//     there is no systemd) start containers.
//   - Containers need explicit rlimits: the sandbox refuses Podman's default
//     ones ("error setting rlimits for ready process: operation not
//     permitted"). PodmanUlimits passes them per container through the API's
//     HostConfig, so no system file (containers.conf) is edited.
//   - Images come from the Docker engine with `docker save | podman load`
//     and are named localhost/NAME:TAG (PodmanImage).
//   - Storage is Podman's default one: containers are force-removed by Run's
//     cleanup and carry LabelKey=1 like every other test container.
type Podman struct {
	// Host is the service's address for a client: unix://DIR/podman.sock.
	Host string
	log  *syncbuf.Buffer
}

// PodmanUlimits are the rlimits every container on Podman needs here (see
// Podman); pass them in Spec.Ulimits.
func PodmanUlimits() []*container.Ulimit {
	return []*container.Ulimit{
		{Name: "nofile", Soft: 1024, Hard: 1024},
		{Name: "nproc", Soft: 4096, Hard: 4096},
	}
}

// PodmanImage is the name image has once loaded into Podman.
func PodmanImage(image string) string { return "localhost/" + image }

// StartPodman starts Podman's API service on a socket under a fresh
// directory, loads the given Docker images into Podman, and stops the
// service when the test ends. It skips the test, saying why, when podman
// is not installed (`apt-get install podman`; .ci/run installs it) or the
// service does not start here.
func StartPodman(t testing.TB, images ...string) *Podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skipf("dockertest: the Podman tests need podman (apt-get install podman): %v", err)
	}
	// Socket paths have a length limit: keep the directory short.
	dir, err := os.MkdirTemp("/tmp", "pm")
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{Host: "unix://" + filepath.Join(dir, "podman.sock"), log: &syncbuf.Buffer{}}
	cmd := exec.Command("podman", "system", "service", "--time=0", p.Host)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("dockertest: podman system service does not start: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		_ = os.RemoveAll(dir)
	})
	if err := p.await(done); err != nil {
		t.Skipf("dockertest: podman system service does not answer here: %v\n%s", err, p.log.Tail(4000))
	}
	for _, img := range images {
		sh := fmt.Sprintf("docker save %s | podman load", img)
		if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
			t.Fatalf("dockertest: load %s into Podman: %v: %s", img, err, out)
		}
	}
	return p
}

// await waits until the service answers a ping, or exits.
func (p *Podman) await(done <-chan struct{}) error {
	if err := awaitPing(p.Host, done, 30*time.Second); err != nil {
		return fmt.Errorf("podman system service: %w", err)
	}
	return nil
}

// Client returns a client of the service, closed when the test ends.
func (p *Podman) Client(t testing.TB) *client.Client {
	t.Helper()
	return hostClient(t, p.Host)
}

// Logs returns the end of the service's output, for a failing test.
func (p *Podman) Logs() string { return p.log.Tail(4000) }
