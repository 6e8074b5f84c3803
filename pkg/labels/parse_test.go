package labels_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// testOpt is what main passes with --domain=example.com for a container
// named "app".
var testOpt = labels.Options{Name: "app", Domain: "example.com", DefaultIdleTimeout: 15 * time.Minute}

// enabled turns {"port": "80"} into {"sleeper.enable": "true", "sleeper.port": "80"}.
func enabled(kv map[string]string) map[string]string {
	m := map[string]string{"sleeper.enable": "true"}
	for k, v := range kv {
		m["sleeper."+k] = v
	}
	return m
}

// defaults is the Spec Parse returns for testOpt and nothing but enable=true.
func defaults() labels.Spec {
	return labels.Spec{
		Hosts:       []string{"app.example.com"},
		Scheme:      "http",
		IdleTimeout: 15 * time.Minute,
		StopMethod:  labels.StopMethodStop,
		StreamWake:  labels.StreamWakeConnect,
		StopTimeout: 10 * time.Second,
		WakeTimeout: 60 * time.Second,
		LoadingPage: true,
	}
}

func TestParseCollectsAllErrorsSorted(t *testing.T) {
	t.Parallel()
	in := enabled(map[string]string{"port": "abc", "idle_timeout": "x", "hosts": "-a,b_", "zzz": "1", "wake_timeout": "1m"})
	_, err := labels.Parse(in, testOpt)
	var keys []string
	for _, e := range labels.Errors(err) {
		keys = append(keys, e.Key)
	}
	want := []string{"sleeper.hosts", "sleeper.hosts", "sleeper.idle_timeout", "sleeper.port", "sleeper.zzz"}
	if !slices.Equal(keys, want) {
		t.Fatalf("error keys %q, want %q\n%v", keys, want, err)
	}
	var first *labels.Error
	if !errors.As(err, &first) || first.Key != "sleeper.hosts" || !strings.Contains(first.Reason, `"-a"`) {
		t.Errorf("errors.As found %+v, want the first hosts error", first)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("message has %d lines, want %d: %q", n, len(want), err)
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := labels.Parse(enabled(map[string]string{"idle_timeout": "abc"}), testOpt)
	const want = `label sleeper.idle_timeout="abc": not a Go duration (e.g. 90s, 15m, 1h30m)`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	e := &labels.Error{Key: "nap.port", Value: ` "x" `, Reason: "why"}
	if got := e.Error(); got != `label nap.port=" \"x\" ": why` {
		t.Errorf("Error() = %s", got)
	}
}

func TestParseNotEnabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   map[string]string
	}{
		{"absent", map[string]string{"com.docker.compose.service": "web", "sleeper.port": "x"}},
		{"false", map[string]string{"sleeper.enable": "false", "sleeper.bogus": "x"}},
		{"zero with spaces", map[string]string{"sleeper.enable": " 0 "}},
		{"other prefix", map[string]string{"nap.enable": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := labels.Parse(tt.in, testOpt)
			if !errors.Is(err, labels.ErrNotEnabled) {
				t.Fatalf("Parse(%v) error = %v, want ErrNotEnabled", tt.in, err)
			}
			if labels.Errors(err) != nil {
				t.Errorf("not enabled must not be a label error: %v", err)
			}
		})
	}
}

func TestEnabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     map[string]string
		prefix string
		want   bool
	}{
		{map[string]string{"sleeper.enable": "true"}, "", true},
		{map[string]string{"sleeper.enable": " TRUE "}, "sleeper", true},
		{map[string]string{"sleeper.enable": "1"}, "", true},
		{map[string]string{"sleeper.enable": "false"}, "", false},
		{map[string]string{"sleeper.enable": "yes"}, "", false},
		{map[string]string{"sleeper.enable": ""}, "", false},
		{map[string]string{}, "", false},
		{nil, "", false},
		{map[string]string{"sleeper.enable": "true"}, "nap", false},
		{map[string]string{"nap.enable": "true"}, "nap", true},
		{map[string]string{"nap.enable": "true"}, "nap.", true},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			if got := labels.Enabled(tt.in, tt.prefix); got != tt.want {
				t.Errorf("Enabled(%v, %q) = %v, want %v", tt.in, tt.prefix, got, tt.want)
			}
		})
	}
}

func TestCustomPrefix(t *testing.T) {
	t.Parallel()
	opt := testOpt
	opt.Prefix = "nap"
	in := map[string]string{
		"nap.enable":     "true",
		"nap.hosts":      "a.example.com",
		"sleeper.bogus":  "ignored: not our prefix",
		"sleeper.enable": "false",
	}
	got, err := labels.Parse(in, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Hosts, []string{"a.example.com"}) {
		t.Errorf("Hosts = %q", got.Hosts)
	}

	in["nap.idle_timout"] = "5m"
	in["nap.proxmox.node"] = "pve"
	_, err = labels.Parse(in, opt)
	var keys, reasons []string
	for _, e := range labels.Errors(err) {
		keys = append(keys, e.Key)
		reasons = append(reasons, e.Reason)
	}
	if !slices.Equal(keys, []string{"nap.idle_timout", "nap.proxmox.node"}) {
		t.Fatalf("error keys %q, want nap.* keys: %v", keys, err)
	}
	for _, want := range []string{"did you mean nap.idle_timeout?", "needs nap.proxmox.vmid"} {
		if !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, want) }) {
			t.Errorf("reasons %q do not mention %q", reasons, want)
		}
	}
}

func TestKeysIsACopy(t *testing.T) {
	t.Parallel()
	k := labels.Keys()
	if len(k) == 0 || k[0] != labels.KeyEnable {
		t.Fatalf("Keys() = %q", k)
	}
	k[0] = "mutated"
	if labels.Keys()[0] != labels.KeyEnable {
		t.Error("Keys() exposes the package's table")
	}
}

// TestLabelNamesDeclaredOnce enforces that every label is spelled once, in
// keys.go: a "sleeper.…" string literal anywhere else in the package's code
// means a label name that can drift from its doc and its parser.
func TestLabelNamesDeclaredOnce(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "keys.go" {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Errorf("%s: %v", fset.Position(lit.Pos()), err)
				return true
			}
			if strings.HasPrefix(s, labels.DefaultPrefix+".") {
				t.Errorf("%s: label literal %s; declare it in keys.go", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
	}
	if checked < 2 {
		t.Fatalf("checked %d files; is the test running in the package directory?", checked)
	}
}

// TestReplicas: sleeper.replicas is a count of 1..1000; anything else names the label.
func TestReplicas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		want uint64
		bad  bool
	}{{"3", 3, false}, {"1", 1, false}, {"1000", 1000, false}, {"0", 0, true}, {"-1", 0, true}, {"1001", 0, true}, {"two", 0, true}} {
		t.Run(tc.v, func(t *testing.T) {
			t.Parallel()
			spec, err := labels.Parse(map[string]string{"sleeper.enable": "true", "sleeper.replicas": tc.v}, labels.Options{})
			if tc.bad {
				var le *labels.Error
				if !errors.As(err, &le) || le.Key != "sleeper."+labels.KeyReplicas {
					t.Fatalf("labels.Parse(replicas=%s) = %v, want a label error on %s", tc.v, err, labels.KeyReplicas)
				}
				return
			}
			if err != nil || spec.Replicas != tc.want {
				t.Fatalf("labels.Parse(replicas=%s) = %d, %v; want %d", tc.v, spec.Replicas, err, tc.want)
			}
		})
	}
}
