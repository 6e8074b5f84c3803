package dockertest

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

func firstAnswer(t *testing.T, url string) time.Time {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Now()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("no answer")
	return time.Time{}
}

func TestZZMeasure(t *testing.T) {
	cli := Client(t)
	img := Image(t)
	var first, startCall, restart, restartCall []time.Duration
	for range 5 {
		id := Run(t, cli, Spec{Image: img, Publish: []string{"8080/tcp"}})
		t0 := time.Now()
		if _, err := cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		addr := HostPort(t, cli, id, "8080/tcp")
		t2 := firstAnswer(t, "http://"+addr+"/")
		first = append(first, t2.Sub(t0))
		startCall = append(startCall, t1.Sub(t0))

		to := 10
		if _, err := cli.ContainerStop(t.Context(), id, client.ContainerStopOptions{Timeout: &to}); err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		if _, err := cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		t1 = time.Now()
		addr2 := HostPort(t, cli, id, "8080/tcp")
		t2 = firstAnswer(t, "http://"+addr2+"/")
		restart = append(restart, t2.Sub(t0))
		restartCall = append(restartCall, t1.Sub(t0))
		t.Logf("first %v (start call %v) restart %v (start call %v) port %s -> %s", first[len(first)-1], startCall[len(startCall)-1], restart[len(restart)-1], restartCall[len(restartCall)-1], addr, addr2)
	}
	med := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	t.Logf("MEDIAN first start->answer %v (start call %v); restart->answer %v (start call %v)", med(first), med(startCall), med(restart), med(restartCall))
}
