// Command fhproxy is a throwaway estimate for issue 19: the smallest
// reasonable fasthttp reverse proxy (one fasthttp.HostClient with keep-alive
// to a fixed upstream, hop-by-hop headers dropped, X-Forwarded-For/-Proto set),
// so its CPU per request can be compared with sleeper's path and nginx's on
// this machine (bench/fasthttp-estimate.sh). It has its own go.mod so that
// sleeper's module does not depend on fasthttp for an estimate.
//
//	go run . -upstream 127.0.0.1:8001 -addr 127.0.0.1:8003 [-bare] [-cpuprofile cpu.out]
//
// -bare forwards the request as received, with no header work: the floor of
// any fasthttp proxy. -cpuprofile writes a profile until SIGINT.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	// The headers a proxy must not forward (RFC 9110 7.6.1).
	hopByHop := []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
	upstream := flag.String("upstream", "127.0.0.1:8001", "upstream address")
	addr := flag.String("addr", "127.0.0.1:8003", "listen address")
	bare := flag.Bool("bare", false, "forward as received, no header work: the floor of any fasthttp proxy")
	profile := flag.String("cpuprofile", "", "write a CPU profile here until interrupted")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		go func() { <-stop; pprof.StopCPUProfile(); _ = f.Close(); os.Exit(0) }()
	}
	hc := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024, MaxIdleConnDuration: time.Minute}
	handler := func(ctx *fasthttp.RequestCtx) {
		req := &ctx.Request
		if *bare {
			if err := hc.Do(req, &ctx.Response); err != nil {
				ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			}
			return
		}
		for _, h := range hopByHop {
			req.Header.Del(h)
		}
		if ip, _, err := net.SplitHostPort(ctx.RemoteAddr().String()); err == nil {
			req.Header.Set("X-Forwarded-For", ip)
		}
		req.Header.Set("X-Forwarded-Proto", "http")
		if err := hc.Do(req, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			return
		}
		for _, h := range hopByHop {
			ctx.Response.Header.Del(h)
		}
	}
	srv := &fasthttp.Server{Handler: handler, ReadTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	log.Fatal(srv.ListenAndServe(*addr))
}
