package labels_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

// decodeLabels reads the fuzz corpus encoding: one "key=value" per line, the
// value being everything after the first '='. A line without '=' is a key
// with an empty value.
func decodeLabels(s string) map[string]string {
	m := make(map[string]string)
	for line := range strings.SplitSeq(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

func FuzzParseLabels(f *testing.F) {
	for _, seed := range []string{
		"sleeper.enable=true",
		"sleeper.enable=false\nsleeper.port=abc",
		"sleeper.enable=yes",
		"sleeper.enable=true\nsleeper.hosts=App.Example.com.,*.example.com\nsleeper.port=8080\nsleeper.scheme=HTTPS",
		"sleeper.enable=true\nsleeper.listen=8081,8082\nsleeper.streams=5432:5432,127.0.0.1:53:53/udp,[::1]:6379:6379/tcp",
		"sleeper.enable=true\nsleeper.idle_timeout=1h30m\nsleeper.stop_method=pause\nsleeper.stop_signal=term\nsleeper.stop_timeout=0\nsleeper.wake_timeout=2m",
		"sleeper.enable=true\nsleeper.depends_on=db:healthy,proj/redis\nsleeper.wake_paths=/,/api/\nsleeper.loading_page=false",
		"sleeper.enable=true\nsleeper.ready_path=/healthz?x=1\nsleeper.network=proxy\nsleeper.upstream=https://[::1]:8443/",
		"sleeper.enable=true\nsleeper.proxmox.node=pve\nsleeper.proxmox.vmid=101\nsleeper.stop_method=kill",
		"sleeper.enable=true\nsleeper.hosts=a,,b\nsleeper.idle_timeout=-1s\nsleeper.wake_timeout=0\nsleeper.bogus=1",
		"sleeper.enable=true\nsleeper.streams=::1:1:1,0:0,1-2:3\nsleeper.depends_on=app\nsleeper.upstream=http://u:p@x/y?z#w",
		"sleeper.enable=true\nsleeper.proxmox.vmid=0\nsleeper.stop_signal=99\nsleeper.hosts=*,127.0.0.1,x:80",
		"com.docker.compose.project=demo\nsleeper.enable= 1 \nsleeper.listen=80,80",
	} {
		f.Add(seed)
	}
	opt := labels.Options{Name: "app", Domain: "example.com", DefaultIdleTimeout: 15 * time.Minute}
	f.Fuzz(func(t *testing.T, encoded string) {
		in := decodeLabels(encoded)
		spec, err := labels.Parse(in, opt)
		again, err2 := labels.Parse(in, opt)
		if !reflect.DeepEqual(spec, again) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Parse is not deterministic: %+v, %v vs %+v, %v", spec, err, again, err2)
		}
		if err != nil {
			checkError(t, err)
			return
		}
		if !labels.Enabled(in, opt.Prefix) {
			t.Errorf("Parse succeeded but Enabled is false")
		}
		checkSpec(t, spec, opt)
	})
}

// checkError holds every error to what Parse promises: either not enabled, or one
// or more *Error on keys under the prefix, sorted.
func checkError(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, labels.ErrNotEnabled) {
		return
	}
	all := labels.Errors(err)
	if len(all) == 0 {
		t.Fatalf("error %v is neither ErrNotEnabled nor *labels.Error", err)
	}
	if !slices.IsSortedFunc(all, func(a, b *labels.Error) int { return strings.Compare(a.Key, b.Key) }) {
		t.Errorf("errors not sorted by key: %v", err)
	}
	for _, e := range all {
		if !strings.HasPrefix(e.Key, "sleeper.") || e.Reason == "" {
			t.Errorf("bad error %#v", e)
		}
	}
}

// checkSpec holds a successful Spec to the invariants callers rely on.
func checkSpec(t *testing.T, s labels.Spec, opt labels.Options) {
	t.Helper()
	for _, h := range s.Hosts {
		if h == "" || h != strings.ToLower(h) || strings.HasSuffix(h, ".") || strings.ContainsAny(h, ":/[] \t") || len(h) > 253 {
			t.Errorf("bad host %q", h)
		}
	}
	if hasDuplicates(s.Hosts) || hasDuplicates(s.Listen) || hasDuplicates(s.WakePaths) {
		t.Errorf("duplicates in %q %v %q", s.Hosts, s.Listen, s.WakePaths)
	}
	for _, p := range s.Listen {
		if p == 0 {
			t.Errorf("listen port 0")
		}
	}
	for _, st := range s.Streams {
		if st.Listen == 0 || st.Target == 0 || (st.Protocol != labels.TCP && st.Protocol != labels.UDP) {
			t.Errorf("bad stream %+v", st)
		}
	}
	if s.IdleTimeout < 0 || s.StopTimeout < 0 || s.WakeTimeout <= 0 {
		t.Errorf("bad durations idle=%v stop=%v wake=%v", s.IdleTimeout, s.StopTimeout, s.WakeTimeout)
	}
	if s.Scheme != "http" && s.Scheme != "https" {
		t.Errorf("bad scheme %q", s.Scheme)
	}
	switch s.StopMethod {
	case labels.StopMethodStop, labels.StopMethodKill:
	case labels.StopMethodPause, labels.StopMethodHibernate:
		if s.Proxmox != nil && s.Proxmox.Type == labels.GuestLXC {
			t.Errorf("%s on a Proxmox LXC", s.StopMethod)
		}
		if s.StopMethod == labels.StopMethodHibernate && s.Proxmox == nil {
			t.Errorf("hibernate outside Proxmox")
		}
	default:
		t.Errorf("bad stop method %q", s.StopMethod)
	}
	for _, d := range s.DependsOn {
		if d.Name == "" || d.Name == opt.Name {
			t.Errorf("bad dependency %+v", d)
		}
	}
	for _, p := range s.WakePaths {
		if !strings.HasPrefix(p, "/") {
			t.Errorf("bad wake path %q", p)
		}
	}
	if s.ReadyPath != "" && !strings.HasPrefix(s.ReadyPath, "/") {
		t.Errorf("bad ready path %q", s.ReadyPath)
	}
	if u := s.Upstream; u != nil && (u.Scheme != s.Scheme || u.Hostname() == "" || u.User != nil || u.Path != "") {
		t.Errorf("bad upstream %#v", u)
	}
	if p := s.Proxmox; p != nil && (p.Node == "" || p.VMID <= 0) {
		t.Errorf("bad proxmox %+v", p)
	}
}

func hasDuplicates[T comparable](s []T) bool {
	seen := make(map[T]bool, len(s))
	for _, v := range s {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}

func FuzzParseStream(f *testing.F) {
	for _, seed := range []string{
		"5432:5432", "5432:5432/tcp", "53:53/UDP", "127.0.0.1:5432:5432", "[::1]:5432:5432/tcp",
		"[::ffff:127.0.0.1]:1:1", "0.0.0.0:80:8080", "[::]:1:65535/udp",
		"", "5432", ":", "::1:1:1", "[::1]5432:5432", "1-2:3", "a:b", "1:2/sctp", "[fe80::1%eth0]:1:1",
		"127.0.0.1::5432", "65536:1", "0:1", " 1:2 ", "[1.2.3.4]:1:1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := labels.ParseStream(s)
		if err != nil {
			if err.Error() == "" || !reflect.DeepEqual(st, labels.Stream{}) {
				t.Fatalf("ParseStream(%q) = %+v, %v", s, st, err)
			}
			return
		}
		if st.Listen == 0 || st.Target == 0 || (st.Protocol != labels.TCP && st.Protocol != labels.UDP) {
			t.Fatalf("ParseStream(%q) = %+v: bad ports or protocol", s, st)
		}
		if st.IP.IsValid() && st.IP.Zone() != "" {
			t.Fatalf("ParseStream(%q) kept a zone: %+v", s, st)
		}
		back, err := labels.ParseStream(st.String())
		if err != nil || back != st {
			t.Fatalf("round trip %q → %+v → %q → %+v, %v", s, st, st.String(), back, err)
		}
	})
}
