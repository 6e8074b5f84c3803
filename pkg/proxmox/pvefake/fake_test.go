package pvefake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T) *Server {
	t.Helper()
	s := New(Config{UnauthorizedDelay: time.Millisecond, TaskDelay: 10 * time.Millisecond})
	t.Cleanup(s.Close)
	s.AddLXC("pve1", 101, "ct", netip.MustParseAddr("127.0.0.2"))
	return s
}

type answer struct {
	status string // the whole status line after the protocol: "500 CT 101 already running"
	body   string
}

func call(t *testing.T, s *Server, method, path, ctype, body string, auth bool) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+"/api2/json"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "PVEAPIToken="+s.TokenID()+"="+s.Secret())
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.Status, body: string(b)}
}

func TestRawAnswers(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	if err := s.SetRunning("pve1", 101, true); err != nil {
		t.Fatal(err)
	}
	s.AddLXC("pve1", 102, "off", netip.MustParseAddr("127.0.0.3"))
	tests := []struct {
		name, method, path string
		auth               bool
		status             string
		body               string // a substring
	}{
		{"no token", "GET", "/cluster/resources", false, "401 Authentication failed!", ""},
		{"already running", "POST", "/nodes/pve1/lxc/101/status/start", true, "500 CT 101 already running",
			`"message":"CT 101 already running\n"`},
		{"not running", "POST", "/nodes/pve1/lxc/102/status/stop", true, "500 CT 102 not running", `"message"`},
		{"unknown vmid", "GET", "/nodes/pve1/lxc/999/status/current", true,
			"500 Configuration file 'nodes/pve1/lxc/999.conf' does not exist", ""},
		{"bad vmid", "GET", "/nodes/pve1/lxc/abc/status/current", true, "400 Parameter verification failed.",
			`"errors":{"vmid":"type check ('integer') failed - got 'abc'"}`},
		{"unknown task", "GET", "/nodes/pve1/tasks/UPID:pve1:0:0:0:vzstart:1:x@pve:/status", true,
			"400 Parameter verification failed.", `"errors":{"upid":"no such task"}`},
		{"interfaces while stopped", "GET", "/nodes/pve1/lxc/102/interfaces", true, "200 OK", `{"data":null}`},
		{"interfaces while running", "GET", "/nodes/pve1/lxc/101/interfaces", true, "200 OK", `"inet":"127.0.0.2/24"`},
		{"unknown endpoint", "GET", "/nodes/pve1/qemu/101/agent/ping", true, "501 Method 'GET", ""},
		{"lxc as qemu", "GET", "/nodes/pve1/qemu/101/status/current", true,
			"500 Configuration file 'nodes/pve1/qemu-server/101.conf' does not exist", ""},
		{"lxc config", "GET", "/nodes/pve1/lxc/101/config", true, "200 OK", `ip=127.0.0.2/24`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := call(t, s, tt.method, tt.path, "", "", tt.auth)
			if !strings.HasPrefix(a.status, tt.status) {
				t.Errorf("status %q, want %q", a.status, tt.status)
			}
			if !strings.Contains(a.body, tt.body) {
				t.Errorf("body %s, want it to contain %s", a.body, tt.body)
			}
		})
	}
}

var upidRE = regexp.MustCompile(`^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:vzshutdown:101:sleeper@pve!sleeper:$`)

func TestJSONBodyAndTasks(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	if err := s.SetRunning("pve1", 101, true); err != nil {
		t.Fatal(err)
	}
	a := call(t, s, "POST", "/nodes/pve1/lxc/101/status/shutdown", "application/json", `{"timeout":7,"forceStop":true}`, true)
	var env struct{ Data string }
	if err := json.Unmarshal([]byte(a.body), &env); err != nil || !upidRE.MatchString(env.Data) {
		t.Fatalf("shutdown answered %s %s", a.status, a.body)
	}
	if f := s.LastForm(EndpointShutdown); f.Get("timeout") != "7" || f.Get("forceStop") != "1" {
		t.Errorf("form %v", f)
	}
	path := "/nodes/pve1/tasks/" + strings.ReplaceAll(env.Data, "!", "%21") + "/status"
	deadline := time.Now().Add(5 * time.Second)
	for {
		a = call(t, s, "GET", path, "", "", true)
		if strings.Contains(a.body, `"status":"stopped"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task never stopped: %s", a.body)
		}
		wait := time.NewTimer(5 * time.Millisecond)
		<-wait.C
	}
	for _, want := range []string{`"exitstatus":"OK"`, `"user":"sleeper@pve"`, `"tokenid":"sleeper"`, `"type":"vzshutdown"`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("task status %s lacks %s", a.body, want)
		}
	}
	if s.Status("pve1", 101) != "stopped" {
		t.Error("guest still running after its shutdown task")
	}
	if n := s.Calls(EndpointTaskStatus); n < 1 {
		t.Errorf("task status calls %d", n)
	}
	bad := call(t, s, "POST", "/nodes/pve1/lxc/101/status/shutdown", "application/x-www-form-urlencoded", "timeout=soon", true)
	if !strings.HasPrefix(bad.status, "400 ") || !strings.Contains(bad.body, `"timeout"`) {
		t.Errorf("bad timeout answered %s %s", bad.status, bad.body)
	}
}

func TestCloseCancelsPendingTasks(t *testing.T) {
	t.Parallel()
	started := false
	s := New(Config{UnauthorizedDelay: time.Millisecond, TaskDelay: time.Hour,
		OnStart: func(Guest) error { started = true; return nil }})
	s.AddLXC("pve1", 101, "ct", netip.MustParseAddr("127.0.0.2"))
	a := call(t, s, "POST", "/nodes/pve1/lxc/101/status/start", "", "", true)
	if !strings.HasPrefix(a.status, "200") {
		t.Fatalf("start answered %s", a.status)
	}
	s.Close() // must not wait an hour
	if started {
		t.Error("a cancelled task ran its hook")
	}
}
