package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sleeperProcess is the real sleeper binary, built from this checkout and
// run with its own label prefix so that it manages only this run's containers.
type sleeperProcess struct {
	cmd    *exec.Cmd
	prefix string
	addr   string
	admin  string
	logs   *bytes.Buffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func buildSleeper(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	bin := filepath.Join(t.TempDir(), "sleeper")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/sleeper")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build sleeper: %v\n%s", err, out)
	}
	return bin
}

// startSleeperProcess builds and runs sleeper; SLEEPER_BIN runs an already
// built binary instead (to compare two builds in one way).
func startSleeperProcess(t *testing.T, extra ...string) *sleeperProcess {
	t.Helper()
	if bin := os.Getenv("SLEEPER_BIN"); bin != "" {
		return startSleeperBinary(t, bin, extra...)
	}
	return startSleeperBinary(t, buildSleeper(t), extra...)
}

// startSleeperBinary runs an already built sleeper binary.
func startSleeperBinary(t *testing.T, bin string, extra ...string) *sleeperProcess {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &sleeperProcess{
		prefix: "bench" + hex.EncodeToString(b[:]),
		addr:   freeAddr(t), admin: freeAddr(t), logs: &bytes.Buffer{},
	}
	args := append([]string{"--addr", s.addr, "--admin-addr", s.admin, "--label-prefix", s.prefix, "--log-level", "warn"}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		_ = s.cmd.Wait()
		if t.Failed() {
			t.Logf("sleeper output:\n%s", s.logs.String())
		}
	})
	return s
}

// get sends a GET through sleeper with the given Host, dialling sleeper's
// loopback address: names are never looked up.
func (s *sleeperProcess) get(host, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	return http.DefaultClient.Do(req)
}

// healthz returns the body of /healthz ("ok", "starting") or "".
func (s *sleeperProcess) healthz() string {
	resp, err := http.Get("http://" + s.admin + "/healthz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

type apiContainer struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error"`
}

func (s *sleeperProcess) containers(t *testing.T) []apiContainer {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + "/api/containers")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []apiContainer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode /api/containers: %v", err)
	}
	return out
}

func (s *sleeperProcess) state(t *testing.T, name string) string {
	for _, c := range s.containers(t) {
		if c.Name == name {
			return c.State
		}
	}
	return ""
}

func (s *sleeperProcess) waitManaged(t *testing.T, name string) {
	t.Helper()
	s.poll(t, 20*time.Second, func() bool { return s.state(t, name) != "" }, name+" managed")
}

func (s *sleeperProcess) waitState(t *testing.T, name, state string) {
	t.Helper()
	s.poll(t, 20*time.Second, func() bool { return s.state(t, name) == state }, name+" "+state)
}

func (s *sleeperProcess) poll(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// procStat returns the process's resident memory in bytes and its CPU time.
func procStat(t *testing.T, pid int) (rss int64, cpu time.Duration) {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb * 1024
		}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may contain spaces, in parens).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return rss, time.Duration(utime+stime) * time.Second / clkTck
}

// gauges reads the named unlabelled metrics from one scrape of sleeper's
// /metrics, in order.
func (s *sleeperProcess) gauges(t *testing.T, names ...string) []float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := make([]float64, len(names))
	for _, line := range strings.Split(string(b), "\n") {
		for i, n := range names {
			if v, ok := strings.CutPrefix(line, n+" "); ok {
				out[i], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
	}
	return out
}

// goroutines reads go_goroutines from sleeper's /metrics.
func (s *sleeperProcess) goroutines(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no go_goroutines in /metrics")
	return 0
}
