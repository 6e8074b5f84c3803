package e2e

import (
	"context"
	"io"
	"log/slog"
	"sleeper/internal/syncbuf"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"sleeper/internal/await"
	"sleeper/internal/dockertest"
	"sleeper/pkg/labels"
	"sleeper/pkg/proxy"
	swarmprov "sleeper/pkg/swarm"
	"sleeper/pkg/watcher"
)

// TestSwarmServiceWakeAndSleep: a service at 0 replicas is woken by a herd
// of 50 held requests with one scale-up, answers all of them, and is scaled
// back to 0 after its idle timeout. It runs on an engine of its own in
// swarm mode (startSwarmEngine), not in parallel.
func TestSwarmServiceWakeAndSleep(t *testing.T) {
	host, cli := startSwarmEngine(t)
	prefix := randomPrefix(t)
	began := time.Now()
	port := freePort(t)
	p, _ := strconv.Atoi(port)
	name := uniqueName(t, "svc")
	createService(t, cli, name, dockertest.Image(t), uint32(p), map[string]string{
		prefix + ".enable": "true", prefix + ".hosts": name + ".test", prefix + ".idle_timeout": "3s",
	})
	base, reg, starts := startSwarmSleeper(t, host, prefix)
	await.Eventually(t, 10*time.Second, "the service to be managed", func() bool {
		w := reg.Get(name)
		return w != nil && w.State() == watcher.StateAsleep
	})

	herd(t, base, name+".test", 50)
	if n := starts.Load(); n != 1 {
		t.Errorf("sleeper asked to scale up %d times, want exactly 1 for the herd", n)
	}
	if ups := scaleUps(t, cli, began); ups != 1 {
		t.Errorf("scale-ups from 0 = %d, want exactly 1 for the herd", ups)
	}
	await.Eventually(t, 30*time.Second, "the service to be scaled back to 0 and asleep", func() bool {
		res, err := cli.ServiceInspect(t.Context(), name, client.ServiceInspectOptions{})
		if err != nil {
			return false
		}
		r := res.Service.Spec.Mode.Replicated
		w := reg.Get(name)
		return r != nil && r.Replicas != nil && *r.Replicas == 0 && w != nil && w.State() == watcher.StateAsleep
	})
}

// createService creates a replicated service at 0 replicas whose port 8080
// is published in host mode on 127.0.0.1:published, removed at the end.
func createService(t *testing.T, cli *client.Client, name, image string, published uint32, lbls map[string]string) {
	t.Helper()
	zero := uint64(0)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: lbls},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol: "tcp", TargetPort: 8080, PublishedPort: published, PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	}
	res, err := cli.ServiceCreate(t.Context(), client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = cli.ServiceRemove(ctx, res.ID, client.ServiceRemoveOptions{})
	})
}

// scaleUps counts the engine's service updates from 0 replicas to more
// since began: each is one scale-up.
func scaleUps(t *testing.T, cli *client.Client, began time.Time) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res := cli.Events(ctx, client.EventsListOptions{
		Filters: client.Filters{}.Add("type", "service"),
		Since:   strconv.FormatInt(began.Add(-time.Second).Unix(), 10),
		Until:   strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
	})
	n := 0
	for {
		select {
		case m := <-res.Messages:
			if m.Action == events.ActionUpdate && m.Actor.Attributes["replicas.old"] == "0" &&
				m.Actor.Attributes["replicas.new"] != "" && m.Actor.Attributes["replicas.new"] != "0" {
				n++
			}
		case err := <-res.Err:
			if err != nil && err != io.EOF {
				t.Fatalf("read service events: %v", err)
			}
			return n
		}
	}
}

// startSwarmSleeper wires the core with the swarm provider as Runtime and
// Source, as cmd/sleeper does with --swarm, and returns the proxy's URL.
func startSwarmSleeper(t *testing.T, host, prefix string) (string, *watcher.Registry, *atomic.Int64) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sw, err := swarmprov.New(swarmprov.Config{Host: host, Prefix: prefix, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rt := &countingRuntime{Runtime: sw}
	reg := watcher.NewRegistry(watcher.RegistryConfig{
		Runtime: rt, Finder: sw, Log: log, Provider: swarmprov.Provider,
		Labels: labels.Options{Prefix: prefix, DefaultIdleTimeout: time.Hour},
	})
	rc := watcher.NewReconciler(watcher.ReconcilerConfig{Source: sw, Registry: reg, Log: log, Prefix: prefix, Engine: swarmprov.Provider})
	srv := proxy.NewServer(proxy.ServerConfig{
		Addr:    "127.0.0.1:0",
		Handler: proxy.NewHandler(proxy.Config{Routes: reg, MaxHeld: 1000, Log: log}),
		Routes:  reg, Problems: reg, Log: log, ListenHost: "127.0.0.1", Grace: 2 * time.Second,
	})
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = rc.Run(ctx) })
	wg.Go(func() { _ = srv.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		reg.Close()
		_ = sw.Close()
		if t.Failed() {
			t.Logf("sleeper logs:\n%s", logs.String())
		}
	})
	select {
	case <-rc.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("sleeper did not finish discovery")
	}
	return "http://" + addr.String(), reg, &rt.starts
}

// countingRuntime counts the starts (scale-ups) sleeper asks for.
type countingRuntime struct {
	watcher.Runtime
	starts atomic.Int64
}

func (c *countingRuntime) Start(ctx context.Context, id string) error {
	c.starts.Add(1)
	return c.Runtime.Start(ctx, id)
}
