package e2e

import (
	"context"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"sleeper/internal/await"
	"sleeper/internal/dockertest"
)

// The swarm engine is a second dockerd, so that swarm mode never touches the
// shared engine other tests run on. Its bridge, its gateway bridge and every
// address pool live in 10.232.0.0/16 (engines of other tests use other
// ranges); nothing in the test sends traffic there: apps are reached on
// host-mode ports on 127.0.0.1.
const (
	swarmBridge   = "br-d3"
	swarmBridgeIP = "10.232.0.1/24"
	swarmGWBridge = "br-d3gw"
	swarmGWSubnet = "10.232.1.0/24"
	swarmLocalNet = "base=10.232.16.0/20,size=24"
	swarmOverlay  = "10.232.128.0/20"
)

// startSwarmEngine starts a dockerd of its own, puts it in swarm mode with
// the test image loaded, and returns its address and a client. Cleanup
// leaves the swarm, stops the daemon and removes its bridges, whatever the
// test's outcome. Only one test may use it at a time (fixed bridge names):
// it is never parallel.
func startSwarmEngine(t *testing.T) (host string, cli *client.Client) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the swarm e2e test needs root to create a bridge and start dockerd")
	}
	dir, err := os.MkdirTemp("", "sw") // short: the socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ip := func(args ...string) error { return exec.Command("ip", args...).Run() }
	_ = ip("link", "del", swarmBridge) // a run killed before its cleanup
	_ = ip("link", "del", swarmGWBridge)
	for _, args := range [][]string{
		{"link", "add", swarmBridge, "type", "bridge"},
		{"addr", "add", swarmBridgeIP, "dev", swarmBridge},
		{"link", "set", swarmBridge, "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatalf("ip %v: %v", args, err)
		}
	}
	t.Cleanup(func() { _ = ip("link", "del", swarmBridge); _ = ip("link", "del", swarmGWBridge) })
	host = "unix://" + filepath.Join(dir, "docker.sock")
	startDockerd(t, dir, host)
	cli, err = client.New(client.FromEnv, client.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	await.Eventually(t, 60*time.Second, "the swarm test engine to answer", func() bool {
		_, err := cli.Ping(t.Context(), client.PingOptions{NegotiateAPIVersion: true})
		return err == nil
	})
	initSwarm(t, cli)
	loadImage(t, dockertest.Client(t), cli, dockertest.Image(t))
	return host, cli
}

// startDockerd runs the daemon until the test ends; cleanup kills it and
// waits for it.
func startDockerd(t *testing.T, dir, host string) {
	t.Helper()
	cfg := filepath.Join(dir, "daemon.json")
	// The main daemon.json sets data-root, which clashes with the flag.
	if err := os.WriteFile(cfg, []byte(`{"storage-driver":"fuse-overlayfs"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dockerd", "--config-file", cfg,
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "pid"), "-H", host, "-b", swarmBridge,
		"--iptables=false", "--ip-masq=false", "--default-address-pool", swarmLocalNet)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("swarm dockerd log (tail):\n%s", tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// initSwarm creates the gateway bridge in our range first (the engine would
// otherwise take 172.18.0.0/16, which the main engine's networks may use),
// then makes the engine a single-node swarm on loopback, and always leaves.
func initSwarm(t *testing.T, cli *client.Client) {
	t.Helper()
	ctx := t.Context()
	_, err := cli.NetworkCreate(ctx, "docker_gwbridge", client.NetworkCreateOptions{
		Driver: "bridge",
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix(swarmGWSubnet)}}},
		Options: map[string]string{
			"com.docker.network.bridge.name":                 swarmGWBridge,
			"com.docker.network.bridge.enable_icc":           "false",
			"com.docker.network.bridge.enable_ip_masquerade": "false",
		},
	})
	if err != nil {
		t.Fatalf("create docker_gwbridge: %v", err)
	}
	_, err = cli.SwarmInit(ctx, client.SwarmInitOptions{
		ListenAddr:      "127.0.0.1:" + freePort(t),
		AdvertiseAddr:   "127.0.0.1",
		DataPathPort:    uint32(freeUDPPort(t)),
		DefaultAddrPool: []netip.Prefix{netip.MustParsePrefix(swarmOverlay)},
		SubnetSize:      24,
	})
	if err != nil {
		t.Fatalf("swarm init: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
			t.Errorf("swarm leave: %v", err)
		}
	})
}

// freeUDPPort finds a free UDP port in the range the engine accepts for
// its VXLAN data path (1024-49151; ephemeral ports lie above it).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + mathrand.IntN(29000)
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			_ = c.Close()
			return p
		}
	}
	t.Fatal("no free UDP port for the swarm data path")
	return 0
}

// loadImage copies an image from one engine to the other (no registry here).
func loadImage(t *testing.T, from, to *client.Client, ref string) {
	t.Helper()
	rc, err := from.ImageSave(t.Context(), []string{ref})
	if err != nil {
		t.Fatalf("save %s: %v", ref, err)
	}
	defer rc.Close()
	res, err := to.ImageLoad(t.Context(), rc)
	if err != nil {
		t.Fatalf("load %s: %v", ref, err)
	}
	defer res.Close()
	if _, err := io.Copy(io.Discard, res); err != nil {
		t.Fatalf("load %s: %v", ref, err)
	}
}
