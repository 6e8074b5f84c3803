package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"sleeper/internal/await"
	"sleeper/internal/dockertest"
)

// TestSwarmBinary runs the sleeper command over the main engine ("local",
// not a swarm manager) and a second dockerd in swarm mode ("sw"), with
// --swarm left at auto: sw's services are found as "sw-swarm/NAME"; one at
// 0 replicas is woken by a herd of 50 held requests with exactly one
// scale-up and scaled back to 0 after its idle timeout; another scaled up by
// hand is followed as awake and put back to 0 after its idle timeout.
func TestSwarmBinary(t *testing.T) {
	host, cli := startSwarmEngine(t)
	prefix := randomPrefix(t)
	began := time.Now()
	lbl := func(h string) map[string]string {
		return map[string]string{prefix + ".enable": "true", prefix + ".hosts": h, prefix + ".idle_timeout": "3s"}
	}
	woken, byHand := uniqueName(t, "herd"), uniqueName(t, "hand")
	for _, s := range []struct{ name, host string }{{woken, "herd.test"}, {byHand, "hand.test"}} {
		p, _ := strconv.Atoi(freePort(t))
		createService(t, cli, s.name, dockertest.Image(t), uint32(p), lbl(s.host))
	}
	addr, admin := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	logs := binSleeper(t, "--addr", addr, "--admin-addr", admin, "--label-prefix", prefix,
		"--docker-host", "local="+mainEngineHost(), "--docker-host", "sw="+host)
	state := func(name string) string { return apiState(t, "http://"+admin, "sw-swarm/"+name) }
	await.Eventually(t, 30*time.Second, "both services listed asleep as sw-swarm/NAME", func() bool {
		return state(woken) == "asleep" && state(byHand) == "asleep"
	})
	await.Eventually(t, 30*time.Second, "logs saying local is not a swarm manager and sw's services are managed", func() bool {
		l := logs.String()
		return strings.Contains(l, "engine=local services_engine=local-swarm") && strings.Contains(l, "not a swarm manager") &&
			strings.Contains(l, `msg="managing swarm services" engine=sw services_engine=sw-swarm`)
	})

	herd(t, "http://"+addr, "herd.test", 50)
	if ups := scaleUps(t, cli, began); ups != 1 {
		t.Errorf("scale-ups from 0 = %d, want exactly 1 for the herd", ups)
	}
	await.Eventually(t, 30*time.Second, "the woken service back at 0 replicas and asleep", func() bool {
		return replicasOf(t, cli, woken) == 0 && state(woken) == "asleep"
	})

	scaleService(t, cli, byHand, 1)
	await.Eventually(t, 30*time.Second, "the service scaled by hand followed as ready", func() bool {
		return state(byHand) == "ready"
	})
	await.Eventually(t, 30*time.Second, "the service scaled by hand put back to 0 after its idle timeout", func() bool {
		return replicasOf(t, cli, byHand) == 0 && state(byHand) == "asleep"
	})
}

// apiState is the state /api/containers gives name, "" when it is absent.
func apiState(t *testing.T, admin, name string) string {
	t.Helper()
	code, body := fetch(admin, "", "/api/containers")
	if code != http.StatusOK {
		return ""
	}
	var cs []struct{ Name, State, Provider string }
	if err := json.Unmarshal([]byte(body), &cs); err != nil {
		t.Fatalf("/api/containers: %v: %s", err, body)
	}
	for _, c := range cs {
		if c.Name == name {
			if c.Provider != "swarm" {
				t.Fatalf("%s: provider %q, want swarm", name, c.Provider)
			}
			return c.State
		}
	}
	return ""
}

// herd sends n held requests at once and fails the test unless each gets 200.
func herd(t *testing.T, base, host string, n int) {
	t.Helper()
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
			req.Host = host
			req.Header.Set("Accept", "application/json") // held, not the loading page
			resp, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// replicasOf is the service's desired count; -1 when it cannot be read.
func replicasOf(t *testing.T, cli *client.Client, name string) int {
	res, err := cli.ServiceInspect(t.Context(), name, client.ServiceInspectOptions{})
	if err != nil {
		return -1
	}
	if r := res.Service.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		return int(*r.Replicas)
	}
	return -1
}

// scaleService sets a service's replicas as `docker service scale` does.
func scaleService(t *testing.T, cli *client.Client, name string, n uint64) {
	t.Helper()
	res, err := cli.ServiceInspect(t.Context(), name, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := res.Service.Spec
	spec.Mode.Replicated.Replicas = &n
	if _, err := cli.ServiceUpdate(t.Context(), res.Service.ID, client.ServiceUpdateOptions{Version: res.Service.Version, Spec: spec}); err != nil {
		t.Fatalf("scale %s to %d: %v", name, n, err)
	}
}
