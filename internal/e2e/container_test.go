package e2e

import (
	"sleeper/internal/await"

	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"sleeper/internal/dockertest"
)

// dockerSocket is where the engine listens on its host, and where the sleeper
// container finds it when it is bind-mounted, as in the README's raw-socket setup.
const dockerSocket = "/var/run/docker.sock"

// containerized is sleeper running as a container from its own image, seen from
// the host only through its two ports published on 127.0.0.1.
type containerized struct {
	t     *testing.T
	cli   *client.Client
	id    string
	proxy string // http://127.0.0.1:<port> of --addr
	admin string // http://127.0.0.1:<port> of --admin-addr
	http  *http.Client
	// started is when the start call returned.
	started time.Time
}

// TestContainerDeploy runs sleeper the way users deploy it: its own FROM
// scratch image built with deploy/Dockerfile.local, on a user-defined network
// shared with the app, the Docker socket mounted, only sleeper's ports
// published. The app publishes nothing, so the wake can only succeed through
// the app's address on that network, which sleeper finds by inspecting its own
// container.
func TestContainerDeploy(t *testing.T) {
	t.Parallel()
	cli := dockertest.Client(t)
	dockertest.RemoveLeftovers(t, cli)
	prefix := "slc" + randomHexString(t, 4)
	// First, so that its cleanup runs last: a network with containers on it
	// cannot be removed.
	netName := createTestNetwork(t, cli)

	appName := uniqueName(t, "deployed")
	const host = "app.localhost"
	appID := dockertest.Run(t, cli, dockertest.Spec{
		Name:    appName,
		Image:   dockertest.Image(t),
		Network: netName,
		Env:     []string{"APP_NAME=" + appName},
		Labels: map[string]string{
			prefix + ".enable":       "true",
			prefix + ".hosts":        host,
			prefix + ".idle_timeout": "2s",
		},
	})
	sl := runSleeperContainer(t, cli, netName, "--label-prefix", prefix, "--log-level", "debug")
	sl.waitHealthz(30 * time.Second)
	t.Logf("sleeper container answered /healthz ok %v after its start", time.Since(sl.started).Round(time.Millisecond))

	if st := sl.apiState(appName); st != "asleep" {
		t.Fatalf("api state of %s before any request = %q, want asleep", appName, st)
	}

	begin := time.Now()
	resp, body := sl.get(host, "/")
	wake := time.Since(begin)
	if resp.StatusCode != http.StatusOK || body != "hello from "+appName+"\n" {
		t.Fatalf("GET %s/ = %d %q, want 200 hello from %s", host, resp.StatusCode, body, appName)
	}
	if resp.Header.Get("X-Sleeper-Wake") == "" {
		t.Error("no X-Sleeper-Wake on the answer that waited for the wake")
	}
	t.Logf("held request answered after %v (X-Sleeper-Wake: %s ms)", wake.Round(time.Millisecond), resp.Header.Get("X-Sleeper-Wake"))
	answered := time.Now()

	ip := appAddress(t, cli, appID, netName)
	want := "upstream=http://" + ip.String() + ":8080"
	await.Eventually(t, 5*time.Second, "sleeper's log to name the upstream "+want,
		func() bool { return strings.Contains(sl.logs(), want) })

	sl.waitMetric(fmt.Sprintf(`sleeper_wakes_total{container=%q,engine="",result="success"} 1`, appName), 5*time.Second)

	dockertest.WaitState(t, cli, appID, exited, 15*time.Second)
	t.Logf("app stopped %v after the answer (idle_timeout 2s)", time.Since(answered).Round(time.Millisecond))
	// The idle timer starts when the request ends, after begin: stopping
	// earlier than this would be a sleep before the timeout. The upper bound
	// is WaitState's deadline.
	if d := time.Since(begin); d < 2*time.Second {
		t.Errorf("app stopped %v after the request was sent, before its 2s idle timeout", d)
	}
	sl.waitMetric(fmt.Sprintf(`sleeper_sleeps_total{container=%q,engine="",method="stop",reason="idle"} 1`, appName), 5*time.Second)
	await.Eventually(t, 5*time.Second, appName+" asleep in the API", func() bool { return sl.apiState(appName) == "asleep" })

	sl.waitHealthy(15 * time.Second)
}

// TestContainerDockerfilesAgree keeps the two Dockerfiles in deploy/ honest:
// the user image (multi-stage, which needs a registry and so cannot be built
// here) must configure the same image as Dockerfile.local, which the test
// above builds and runs. Neither may have a "# syntax=" line, which makes the
// engine pull a frontend image.
func TestContainerDockerfilesAgree(t *testing.T) {
	t.Parallel()
	read := func(name string) []string {
		b, err := os.ReadFile("../../deploy/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			d, ok := strings.CutPrefix(strings.TrimSpace(l), "#")
			if ok && strings.HasPrefix(strings.ToLower(strings.TrimSpace(d)), "syntax=") {
				t.Errorf("deploy/%s has a parser directive %q", name, l)
			}
		}
		return finalStageConfig(string(b))
	}
	user, local := read("Dockerfile"), read("Dockerfile.local")
	if !slices.Equal(user, local) {
		t.Fatalf("final stage differs:\nDockerfile:       %q\nDockerfile.local: %q", user, local)
	}
	for _, want := range []string{
		"USER 65534:65534",
		`ENTRYPOINT ["/sleeper"]`,
	} {
		if !slices.Contains(local, want) {
			t.Errorf("final stage %q lacks %q", local, want)
		}
	}
	if !slices.ContainsFunc(local, func(l string) bool {
		return strings.HasPrefix(l, "HEALTHCHECK ") && strings.HasSuffix(l, `CMD ["/sleeper","healthcheck"]`)
	}) {
		t.Errorf("final stage %q: want an exec-form HEALTHCHECK running /sleeper healthcheck (scratch has no shell)", local)
	}
}

// finalStageConfig returns the instructions after the last FROM, without
// comments, blank lines and COPY (the stages get their files differently).
func finalStageConfig(dockerfile string) []string {
	lines := strings.Split(dockerfile, "\n")
	var out []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "FROM "):
			out = out[:0]
		case l == "", strings.HasPrefix(l, "#"), strings.HasPrefix(l, "COPY "):
		default:
			out = append(out, l)
		}
	}
	return out
}

func randomHexString(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// createTestNetwork creates a user-defined bridge network, removed when the
// test ends. Containers on it reach each other by IP; the host never dials it.
func createTestNetwork(t *testing.T, cli *client.Client) string {
	t.Helper()
	name := dockertest.NamePrefix + "net-" + randomHexString(t, 4)
	_, err := cli.NetworkCreate(t.Context(), name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{dockertest.LabelKey: "1"},
	})
	if err != nil {
		t.Fatalf("create network %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
			t.Errorf("remove network %s: %v", name, err)
		}
	})
	return name
}

// runSleeperContainer creates and starts sleeper from dockertest.SleeperImage on
// network with the engine's socket mounted, and publishes 8080 and 9090 on
// 127.0.0.1 with ephemeral host ports. dockertest.Spec has no mounts, so the
// container is created here; it is removed when the test ends, after its logs
// are printed if the test failed.
func runSleeperContainer(t *testing.T, cli *client.Client, netName string, args ...string) *containerized {
	t.Helper()
	loopback := netip.MustParseAddr("127.0.0.1")
	ports := network.PortMap{}
	exposed := network.PortSet{}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		port := network.MustParsePort(p)
		exposed[port] = struct{}{}
		ports[port] = []network.PortBinding{{HostIP: loopback}}
	}
	cfg := &container.Config{
		Image:        dockertest.SleeperImage(t),
		Cmd:          args,
		Labels:       map[string]string{dockertest.LabelKey: "1"},
		ExposedPorts: exposed,
		// Only the interval: an empty Test inherits the image's own HEALTHCHECK,
		// which is what this test checks; its 30 s interval would only slow it.
		Healthcheck: &container.HealthConfig{Interval: time.Second},
	}
	hc := &container.HostConfig{
		Binds:        []string{dockerSocket + ":" + dockerSocket},
		PortBindings: ports,
		NetworkMode:  container.NetworkMode(netName),
		// The hardening of deploy/compose.yaml, so that it is known to work.
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
	}
	// The image runs as nobody; the raw socket needs its group, as the README
	// tells users. Without a local socket to stat (a remote engine), run as root.
	if fi, err := os.Stat(dockerSocket); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hc.GroupAdd = []string{strconv.FormatUint(uint64(st.Gid), 10)}
		}
	}
	if hc.GroupAdd == nil {
		t.Logf("cannot stat %s here; running the sleeper container as root", dockerSocket)
		cfg.User = "0:0"
	}
	name := dockertest.NamePrefix + "sleeper-" + randomHexString(t, 4)
	created, err := cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
		Name:       name,
		Config:     cfg,
		HostConfig: hc,
		NetworkingConfig: &network.NetworkingConfig{
			EndpointsConfig: map[string]*network.EndpointSettings{netName: {}},
		},
	})
	if err != nil {
		t.Fatalf("create sleeper container: %v", err)
	}
	sl := &containerized{t: t, cli: cli, id: created.ID, http: &http.Client{Timeout: 60 * time.Second}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(ctx, sl.id, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("remove sleeper container: %v", err)
		}
	})
	// Registered after the removal, so it runs before it.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sleeper container logs:\n%s", sl.logs())
		}
	})
	if _, err := cli.ContainerStart(t.Context(), sl.id, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start sleeper container: %v", err)
	}
	sl.started = time.Now()
	sl.proxy = "http://" + dockertest.HostPort(t, cli, sl.id, "8080/tcp")
	sl.admin = "http://" + dockertest.HostPort(t, cli, sl.id, "9090/tcp")
	return sl
}

// logs returns everything sleeper wrote so far (it logs to stderr).
func (c *containerized) logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.cli.ContainerLogs(ctx, c.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(logs unavailable: %v)", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	// Without a TTY the engine multiplexes stdout and stderr in frames.
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		fmt.Fprintf(&out, "\n(reading logs: %v)", err)
	}
	return out.String()
}

// fetch GETs url with the given Host ("" keeps the URL's).
func (c *containerized) fetch(url, host string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(c.t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// get sends a request through sleeper's proxy port.
func (c *containerized) get(host, path string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := c.fetch(c.proxy+path, host)
	if err != nil {
		c.t.Fatalf("GET %s%s through sleeper: %v", host, path, err)
	}
	return resp, body
}

// waitHealthz polls /healthz until sleeper has finished its first discovery:
// before that it answers "starting", and the listener itself takes a moment.
func (c *containerized) waitHealthz(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, body, err := c.fetch(c.admin+"/healthz", "")
		if err == nil && resp.StatusCode == http.StatusOK && body == "ok\n" {
			return
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
			}
			c.t.Fatalf("no ok from /healthz within %v: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiState is the container's state in GET /api/containers/{name}, "" if
// the API does not know it (yet).
func (c *containerized) apiState(name string) string {
	c.t.Helper()
	resp, body, err := c.fetch(c.admin+"/api/containers/"+name, "")
	if err != nil {
		c.t.Fatalf("GET /api/containers/%s: %v", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		c.t.Fatalf("GET /api/containers/%s: %v in %q", name, err, body)
	}
	return v.State
}

// waitMetric polls /metrics until it has line, a whole sample line.
func (c *containerized) waitMetric(line string, d time.Duration) {
	c.t.Helper()
	var body string
	deadline := time.Now().Add(d)
	for {
		var err error
		_, body, err = c.fetch(c.admin+"/metrics", "")
		if err == nil && slices.Contains(strings.Split(body, "\n"), line) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no %q in /metrics after %v (err %v); sleeper_ lines:\n%s", line, d, err, sleeperLines(body))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sleeperLines(metrics string) string {
	var out []string
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "sleeper_") && !strings.HasPrefix(l, "sleeper_wake_duration_seconds_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitHealthy waits for the engine to run the image's HEALTHCHECK (sleeper
// healthcheck, exec form) with success, and checks that it is the image's.
func (c *containerized) waitHealthy(d time.Duration) {
	c.t.Helper()
	dockertest.WaitState(c.t, c.cli, c.id, func(s container.State) bool {
		return s.Health != nil && s.Health.Status == container.Healthy
	}, d)
	c.t.Logf("container seen healthy %v after its start (probe interval 1s)", time.Since(c.started).Round(time.Millisecond))
	res, err := c.cli.ContainerInspect(c.t.Context(), c.id, client.ContainerInspectOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	hc := res.Container.Config.Healthcheck
	want := []string{"CMD", "/sleeper", "healthcheck"}
	if hc == nil || !slices.Equal(hc.Test, want) {
		c.t.Fatalf("healthcheck = %+v, want the image's %q", hc, want)
	}
}

// appAddress is the app's IP on netName, checked to lie in that network's
// subnet: the address sleeper must have dialled. The test never dials it.
func appAddress(t *testing.T, cli *client.Client, id, netName string) netip.Addr {
	t.Helper()
	res, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Container.NetworkSettings.Ports; len(b) > 0 {
		for port, bindings := range b {
			if len(bindings) > 0 {
				t.Fatalf("app publishes %s as %v; it must be reachable only on %s", port, bindings, netName)
			}
		}
	}
	ep := res.Container.NetworkSettings.Networks[netName]
	if ep == nil || !ep.IPAddress.IsValid() {
		t.Fatalf("app has no address on %s: %+v", netName, res.Container.NetworkSettings.Networks)
	}
	nres, err := cli.NetworkInspect(t.Context(), netName, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range nres.Network.IPAM.Config {
		if cfg.Subnet.Contains(ep.IPAddress) {
			return ep.IPAddress
		}
	}
	t.Fatalf("app address %s is outside %s's subnets %+v", ep.IPAddress, netName, nres.Network.IPAM.Config)
	return netip.Addr{}
}
