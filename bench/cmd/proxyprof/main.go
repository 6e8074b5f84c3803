// Command proxyprof runs sleeper's HTTP front door in-process in front of a
// fixed upstream, with a CPU profile, so the proxy path can be profiled under
// wrk without Docker: a watcher is made ready through the upstream label.
//
//	go run ./bench/cmd/proxyprof -upstream 127.0.0.1:8001 -addr 127.0.0.1:8002 -cpuprofile cpu.out -memprofile mem.out -for 15s
//
// bench/proxy-profile.sh runs it under wrk against an nginx upstream.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"sleeper/pkg/proxy"
	"sleeper/pkg/watcher"
)

// readyRuntime reports one running container and refuses to change it.
type readyRuntime struct{ watcher.Runtime }

func (readyRuntime) Inspect(context.Context, string) (watcher.Container, error) {
	return watcher.Container{ID: "bench", Name: "bench", Status: watcher.StatusRunning, StartedAt: time.Unix(1, 0)}, nil
}

func main() {
	upstream := flag.String("upstream", "127.0.0.1:8001", "upstream address")
	addr := flag.String("addr", "127.0.0.1:8002", "listen address")
	profile := flag.String("cpuprofile", "", "write a CPU profile here")
	memProfile := flag.String("memprofile", "", "write an allocation profile (every allocation sampled) here")
	dur := flag.Duration("for", 15*time.Second, "how long to serve")
	flag.Parse()
	if *memProfile != "" {
		runtime.MemProfileRate = 1
		defer writeHeapProfile(*memProfile)
	}

	log := slog.New(slog.DiscardHandler)
	reg := watcher.NewRegistry(watcher.RegistryConfig{Runtime: readyRuntime{}, Log: log})
	reg.Apply(watcher.Container{ID: "bench", Name: "bench", Status: watcher.StatusRunning, StartedAt: time.Unix(1, 0),
		Labels: map[string]string{"sleeper.enable": "true", "sleeper.hosts": "bench.localhost", "sleeper.upstream": "http://" + *upstream}})
	for reg.Get("bench").State() != watcher.StateReady {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	srv := proxy.NewServer(proxy.ServerConfig{Addr: *addr, Handler: proxy.NewHandler(proxy.Config{Routes: reg, MaxHeld: 1000, Log: log}), Routes: reg, Problems: reg, Log: log})
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			panic(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ln, _ := net.Listen("tcp", *addr)
	_ = ln.Close()
	fmt.Println("serving on", *addr, "for", *dur)
	_ = srv.Run(ctx)
}

// writeHeapProfile writes the allocation profile (go tool pprof
// -sample_index=alloc_objects shows where allocations come from).
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}
