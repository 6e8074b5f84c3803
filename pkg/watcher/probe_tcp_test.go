package watcher

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"sleeper/pkg/labels"
)

// fakeDockerProxy accepts like docker-proxy: before the app is up it hangs
// up each connection at once (its own dial to the app is refused); once up
// it keeps them open.
func fakeDockerProxy(t *testing.T) (addr string, up *atomic.Bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up = &atomic.Bool{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if up.Load() {
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
				continue
			}
			c.Close()
		}
	})
	return ln.Addr().String(), up
}

func tcpProbeFor(addr string) func(context.Context) bool {
	c := Container{Published: map[string]string{"5432/tcp": addr}}
	spec := &labels.Spec{Streams: []labels.Stream{{Listen: 5432, Target: 5432, Protocol: labels.TCP}}}
	probe, _ := newProber().tcp(c, spec, nil)
	return probe
}

// TestTCPProbeThroughProxy: a proxy that hangs up is never taken for the
// app, however many probes learn its timing; once the app is behind it, the
// probe says ready.
func TestTCPProbeThroughProxy(t *testing.T) {
	t.Parallel()
	addr, up := fakeDockerProxy(t)
	probe := tcpProbeFor(addr)
	for i := range 10 {
		if probe(t.Context()) {
			t.Fatalf("probe %d: ready while the proxy hangs up", i)
		}
	}
	up.Store(true)
	if !probe(t.Context()) {
		t.Fatal("not ready with the app behind the proxy")
	}
}

// TestTCPProbeRefusedThenProxy: a refused dial (docker-proxy not listening
// yet, right after a start) does not make the next accept look like the app.
func TestTCPProbeRefusedThenProxy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	probe := tcpProbeFor(addr)
	if probe(t.Context()) {
		t.Fatal("ready with nothing listening")
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skip("port taken meanwhile: " + err.Error())
	}
	defer ln.Close()
	go func() { // a proxy whose app is not up: accept, hang up
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for i := range 5 {
		if probe(t.Context()) {
			t.Fatalf("probe %d: ready while the proxy hangs up", i)
		}
	}
}
