package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sleeper/internal/dockertest"
)

// nginxConf serves a tiny answer itself on the upstream port, and proxies to
// it with upstream keep-alive on the proxy port: the same upstream sleeper
// proxies to, so the two proxies are compared like for like.
const nginxConf = `
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream app { server 127.0.0.1:%[2]s; keepalive 128; }
  server { listen 127.0.0.1:%[2]s; location / { return 200 "hello from the upstream\n"; } }
  server {
    listen 127.0.0.1:%[3]s;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`

func port(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func startNginx(t *testing.T, upstream, proxy string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx not found: apt-get install nginx-light (bench/http-throughput.sh does)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, port(upstream), port(proxy)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-g", "daemon off;")
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM, not Kill: the master then stops its workers too.
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if resp, err := http.Get("http://" + proxy + "/"); err == nil {
			_ = resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type wrkResult struct {
	rps float64
	p99 time.Duration
	raw string
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	p99Re = regexp.MustCompile(`\s99%\s+([\d.]+)(us|ms|s)`)
)

func runWrk(t *testing.T, url, host string, d time.Duration) wrkResult {
	t.Helper()
	args := []string{"-t2", "-c64", "-d" + d.String(), "--latency"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	r := wrkResult{raw: string(out)}
	if m := rpsRe.FindStringSubmatch(r.raw); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := p99Re.FindStringSubmatch(r.raw); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[2]]
		r.p99 = time.Duration(v * float64(unit))
	}
	if r.rps == 0 || strings.Contains(r.raw, "Non-2xx") {
		t.Fatalf("wrk run failed:\n%s", r.raw)
	}
	return r
}

// TestHTTPThroughput compares sleeper with nginx, both proxying with
// keep-alive to the same upstream (nginx answering by itself), with wrk at
// 64 connections. The runs alternate, and each proxy's best of three counts.
func TestHTTPThroughput(t *testing.T) {
	benchOnly(t)
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk not found: apt-get install wrk (bench/http-throughput.sh does)")
	}
	upstream, nginxProxy := freeAddr(t), freeAddr(t)
	startNginx(t, upstream, nginxProxy)

	s := startSleeperProcess(t)
	cli := dockertest.Client(t)
	name := "httpbench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	host := name + ".localhost"
	// A running container whose upstream label points at the shared upstream.
	dockertest.Run(t, cli, dockertest.Spec{
		Name: name, Image: dockertest.Image(t), Start: true,
		Labels: map[string]string{
			s.prefix + ".enable": "true", s.prefix + ".hosts": host,
			s.prefix + ".upstream": "http://" + upstream,
		},
	})
	s.waitState(t, name, "ready")

	d := 10 * time.Second
	if v, err := time.ParseDuration(os.Getenv("SLEEPER_BENCH_DURATION")); err == nil {
		d = v
	}
	var best [2]wrkResult
	for range 3 {
		for i, target := range []struct{ url, host string }{
			{"http://" + nginxProxy + "/", ""},
			{"http://" + s.addr + "/", host},
		} {
			r := runWrk(t, target.url, target.host, d)
			if r.rps > best[i].rps {
				best[i] = r
			}
		}
	}
	n, sl := best[0], best[1]
	fmt.Printf("http: nginx %.0f req/s p99 %s; sleeper %.0f req/s p99 %s; throughput ratio %.2f×, p99 ratio %.2f×\n",
		n.rps, n.p99, sl.rps, sl.p99, sl.rps/n.rps, float64(sl.p99)/float64(n.p99))
}
