package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sleeper/internal/dockertest"
)

// nginxUpstreamConf serves a tiny answer itself: the upstream both proxies
// forward to, so the two are compared like for like. It runs as its own
// nginx, so that the proxy nginx's CPU time is its proxying alone.
const nginxUpstreamConf = `
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
  # proxy port (unused here): %[3]s
  server { listen 127.0.0.1:%[2]s; location / { return 200 "hello from the upstream\n"; } }
}
`

// nginxProxyConf proxies to the upstream with keep-alive.
const nginxProxyConf = `
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

// startNginx runs an nginx with the given configuration (formatted with
// its directory and the two ports) until the test ends, waits until it
// answers on probe, and returns its master's pid.
func startNginx(t *testing.T, conf, upstream, proxy, probe string) int {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx not found: apt-get install nginx-light (bench/http-throughput.sh does)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, fmt.Appendf(nil, conf, dir, port(upstream), port(proxy)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", path, "-g", "daemon off;")
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM, not Kill: the master then stops its workers too.
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if resp, err := http.Get("http://" + probe + "/"); err == nil {
			_ = resp.Body.Close()
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// treeCPU is the CPU time of a process and its children (nginx's workers).
func treeCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	_, cpu := procStat(t, pid)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		if k, err := strconv.Atoi(f); err == nil {
			cpu += treeCPU(t, k)
		}
	}
	return cpu
}

type wrkResult struct {
	rps      float64
	p99      time.Duration
	requests float64
	cpu      time.Duration // the proxy's CPU time over the run
	raw      string
}

// cpuPerRequest is the proxy's CPU time per request.
func (r wrkResult) cpuPerRequest() time.Duration {
	return time.Duration(float64(r.cpu) / r.requests)
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	p99Re = regexp.MustCompile(`\s99%\s+([\d.]+)(us|ms|s)`)
	reqRe = regexp.MustCompile(`(\d+) requests in`)
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
	if m := reqRe.FindStringSubmatch(r.raw); m != nil {
		r.requests, _ = strconv.ParseFloat(m[1], 64)
	}
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
// keep-alive to the same upstream (a separate nginx answering by itself),
// with wrk at 64 connections. The runs alternate, five rounds by default
// (SLEEPER_BENCH_ROUNDS), and each figure is the median of its rounds. The
// CPU time per request is the proxy's own (/proc/<pid>/stat, utime+stime,
// nginx's master and workers) over the run, divided by wrk's count.
func TestHTTPThroughput(t *testing.T) {
	benchOnly(t)
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk not found: apt-get install wrk (bench/http-throughput.sh does)")
	}
	upstream, nginxProxy := freeAddr(t), freeAddr(t)
	startNginx(t, nginxUpstreamConf, upstream, "", upstream)
	nginxPid := startNginx(t, nginxProxyConf, upstream, nginxProxy, nginxProxy)

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
	targets := []struct {
		name, url, host string
		pid             int
	}{
		{"nginx", "http://" + nginxProxy + "/", "", nginxPid},
		{"sleeper", "http://" + s.addr + "/", host, s.cmd.Process.Pid},
	}
	var runs [2][]wrkResult
	for round := range rounds() {
		for i, target := range targets {
			before := treeCPU(t, target.pid)
			r := runWrk(t, target.url, target.host, d)
			r.cpu = treeCPU(t, target.pid) - before
			runs[i] = append(runs[i], r)
			fmt.Printf("round %d %-7s %6.0f req/s  p99 %-8s  %5.1f µs CPU/request\n",
				round+1, target.name, r.rps, r.p99.Round(10*time.Microsecond), float64(r.cpuPerRequest())/1e3)
		}
	}
	n, sl := medianRun(runs[0]), medianRun(runs[1])
	fmt.Printf("http (median of %d): nginx %.0f req/s p99 %s %.1f µs/req; sleeper %.0f req/s p99 %s %.1f µs/req; throughput ratio %.2f×, p99 ratio %.2f×, CPU ratio %.2f×\n",
		len(runs[0]), n.rps, n.p99, float64(n.cpu)/1e3, sl.rps, sl.p99, float64(sl.cpu)/1e3,
		sl.rps/n.rps, float64(sl.p99)/float64(n.p99), float64(sl.cpu)/float64(n.cpu))
}

// medianRun is the median of each figure on its own: rps, p99 and CPU per
// request (in cpu).
func medianRun(rs []wrkResult) wrkResult {
	var rps []float64
	var p99, cpu []time.Duration
	for _, r := range rs {
		rps = append(rps, r.rps)
		p99 = append(p99, r.p99)
		cpu = append(cpu, r.cpuPerRequest())
	}
	slices.Sort(rps)
	return wrkResult{rps: rps[len(rps)/2], p99: median(p99), cpu: median(cpu)}
}
