package labels_test

import (
	"slices"
	"strings"
	"testing"

	"sleeper/pkg/labels"
)

// checkHostSources holds Spec.HostSources to its promise: Hosts again, in
// order, each with a known source.
func checkHostSources(t *testing.T, s labels.Spec) {
	t.Helper()
	if len(s.HostSources) != len(s.Hosts) {
		t.Fatalf("HostSources %+v does not match Hosts %q", s.HostSources, s.Hosts)
	}
	for i, hs := range s.HostSources {
		if hs.Host != s.Hosts[i] {
			t.Errorf("HostSources[%d] = %+v, Hosts[%d] = %q", i, hs, i, s.Hosts[i])
		}
		switch hs.Source {
		case labels.SourceDomain:
		case labels.SourceLabel, labels.SourceTraefik, labels.SourceCaddy:
			if hs.Label == "" {
				t.Errorf("HostSources[%d] = %+v has no label", i, hs)
			}
		default:
			t.Errorf("HostSources[%d] has unknown source %q", i, hs.Source)
		}
	}
}

func TestTraefikRuleHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule  string
		want  []string
		notes int // how many notes; -1: at least one
	}{
		{"Host(`app.example.com`)", []string{"app.example.com"}, 0},
		{`Host("App.Example.com.")`, []string{"app.example.com"}, 0},
		{"Host(`a.example.com`, `b.example.com`)", []string{"a.example.com", "b.example.com"}, 0},
		{"Host(`a.example.com`) || Host(`b.example.com`)", []string{"a.example.com", "b.example.com"}, 0},
		{"Host(`a.example.com`) && PathPrefix(`/api`)", []string{"a.example.com"}, 0},
		{"(Host(`a.io`) || Host(`b.io`)) && (PathPrefix(`/x`) || Method(`GET`))", []string{"a.io", "b.io"}, 0},
		{"PathPrefix(`/api`) && Host(`a.io`)", []string{"a.io"}, 0},
		{"host(`a.io`) || HostHeader(`b.io`)", []string{"a.io", "b.io"}, 0},
		{"Host(`a.io`) || Host(`A.io`)", []string{"a.io"}, 0},
		{"Host(`*.example.com`)", []string{"*.example.com"}, 0},
		{"  Host( `a.io` )  ", []string{"a.io"}, 0},
		{"HostRegexp(`^.+\\.example\\.com$`)", nil, 1},
		{"Host(`a.io`) || HostRegexp(`.*`)", []string{"a.io"}, 1},
		{"PathPrefix(`/api`)", nil, 1},
		{"Host(`a.io`) && !Host(`b.io`)", []string{"a.io"}, 1},
		{"!(Host(`b.io`) || PathPrefix(`/`))", nil, 1},
		{"!!Host(`a.io`)", []string{"a.io"}, 0},
		{"Host(`10.0.0.1`)", nil, 1},
		{"Host(`a.io:8080`)", nil, 1},
		{"Host(`{{ .Name }}.example.com`)", nil, 1},
		{"Host(a.io)", nil, 1},
		{"Host(`a.io`", nil, 1},
		{"", nil, 1},
		{"Host(`a.io`) + 1", nil, 1},
		{"x.Host(`a.io`)", nil, 1},
		{`Host("a\x00")`, nil, 1},
	}
	for _, tt := range tests {
		hosts, notes := labels.TraefikRuleHosts(tt.rule)
		if !slices.Equal(hosts, tt.want) {
			t.Errorf("TraefikRuleHosts(%q) = %q, want %q (notes %q)", tt.rule, hosts, tt.want, notes)
		}
		if tt.notes >= 0 && len(notes) != tt.notes || tt.notes < 0 && len(notes) == 0 {
			t.Errorf("TraefikRuleHosts(%q) notes %q, want %d", tt.rule, notes, tt.notes)
		}
	}
}

func TestCaddyAddressHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v     string
		want  []string
		notes int
	}{
		{"app.example.com", []string{"app.example.com"}, 0},
		{"http://app.example.com:8080", []string{"app.example.com"}, 0},
		{"https://App.Example.com", []string{"app.example.com"}, 0},
		{"a.io b.io", []string{"a.io", "b.io"}, 0},
		{"a.io, b.io,c.io", []string{"a.io", "b.io", "c.io"}, 0},
		{"a.io:443 http://a.io", []string{"a.io"}, 0},
		{"*.example.com", []string{"*.example.com"}, 0},
		{"a.io/api/*", []string{"a.io"}, 0},
		{"localhost:8080", []string{"localhost"}, 0},
		{":80", nil, 1},
		{"http://", nil, 1},
		{"(snippet)", nil, 1},
		{"{$DOMAIN}", nil, 1},
		{"127.0.0.1:80 a.io", []string{"a.io"}, 1},
		{"[::1]:80", nil, 1},
		{"*", nil, 1},
		{"a..io", nil, 1},
		{"", nil, 1},
		{" , ", nil, 1},
	}
	for _, tt := range tests {
		hosts, notes := labels.CaddyAddressHosts(tt.v)
		if !slices.Equal(hosts, tt.want) || len(notes) != tt.notes {
			t.Errorf("CaddyAddressHosts(%q) = %q, notes %q; want %q and %d notes", tt.v, hosts, notes, tt.want, tt.notes)
		}
	}
}

func TestForeignHostsUnionAndOrder(t *testing.T) {
	t.Parallel()
	in := map[string]string{
		"traefik.http.routers.web.rule":                      "Host(`b.io`) && PathPrefix(`/`)",
		"traefik.http.routers.api.rule":                      "Host(`a.io`) || Host(`b.io`)",
		"traefik.http.routers.web.tls":                       "true",
		"traefik.http.routers.x.y.rule":                      "Host(`nested.io`)",
		"traefik.http.routers.re.rule":                       "HostRegexp(`.+`)",
		"traefik.tcp.routers.db.rule":                        "HostSNI(`db.io`)",
		"traefik.http.services.web.loadbalancer.server.port": "80",
		"caddy_10":                   "j.io",
		"caddy_2":                    "http://c.io:8080, a.io",
		"caddy":                      "d.io",
		"caddy.reverse_proxy":        "{{upstreams 80}}",
		"caddy_x":                    "x.io",
		"com.docker.compose.service": "web",
	}
	hosts, notes := labels.ForeignHosts(in, []string{labels.SourceCaddy, labels.SourceTraefik})
	var got []string
	for _, h := range hosts {
		got = append(got, h.Source+":"+h.Label+":"+h.Host)
	}
	want := []string{
		"traefik:traefik.http.routers.api.rule:a.io",
		"traefik:traefik.http.routers.api.rule:b.io",
		"caddy:caddy:d.io",
		"caddy:caddy_2:c.io",
		"caddy:caddy_10:j.io",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ForeignHosts =\n%q\nwant\n%q", got, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "traefik.http.routers.re.rule") || !strings.Contains(notes[0], "HostRegexp") {
		t.Errorf("notes %q, want one on the HostRegexp router", notes)
	}

	only, _ := labels.ForeignHosts(in, []string{labels.SourceCaddy})
	if len(only) != 4 || only[0].Host != "d.io" {
		t.Errorf("caddy only: %+v", only)
	}
	if none, notes := labels.ForeignHosts(in, nil); none != nil || notes != nil {
		t.Errorf("no sources: %+v %q", none, notes)
	}
}

func TestParseHostsPrecedence(t *testing.T) {
	t.Parallel()
	both := []string{labels.SourceTraefik, labels.SourceCaddy}
	foreign := map[string]string{
		"sleeper.enable":                "true",
		"traefik.http.routers.app.rule": "Host(`t.example.org`)",
		"caddy":                         "c.example.org",
	}
	tests := []struct {
		name string
		add  map[string]string
		from []string
		want []labels.HostSource
	}{
		{"foreign labels over the domain default", nil, both, []labels.HostSource{
			{Host: "t.example.org", Source: labels.SourceTraefik, Label: "traefik.http.routers.app.rule"},
			{Host: "c.example.org", Source: labels.SourceCaddy, Label: "caddy"},
		}},
		{"hosts label wins", map[string]string{"sleeper.hosts": "own.example.org"}, both, []labels.HostSource{
			{Host: "own.example.org", Source: labels.SourceLabel, Label: "sleeper.hosts"},
		}},
		{"sources off: domain default", nil, nil, []labels.HostSource{
			{Host: "app.example.com", Source: labels.SourceDomain},
		}},
		{"only caddy", nil, []string{labels.SourceCaddy}, []labels.HostSource{
			{Host: "c.example.org", Source: labels.SourceCaddy, Label: "caddy"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := map[string]string{}
			for _, m := range []map[string]string{foreign, tt.add} {
				for k, v := range m {
					in[k] = v
				}
			}
			opt := testOpt
			opt.HostsFrom = tt.from
			spec, err := labels.Parse(in, opt)
			if err != nil {
				t.Fatal(err)
			}
			checkHostSources(t, spec)
			if !slices.Equal(spec.HostSources, tt.want) {
				t.Errorf("HostSources %+v, want %+v", spec.HostSources, tt.want)
			}
		})
	}
}

// TestParseForeignHostsNeverFail checks that what sleeper cannot use in
// another tool's labels leaves the container managed, with a note.
func TestParseForeignHostsNeverFail(t *testing.T) {
	t.Parallel()
	in := map[string]string{
		"sleeper.enable":                "true",
		"traefik.http.routers.app.rule": "HostRegexp(`.+`)",
		"caddy":                         ":80",
	}
	opt := testOpt
	opt.HostsFrom = []string{labels.SourceTraefik, labels.SourceCaddy}
	spec, err := labels.Parse(in, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(spec.Hosts, []string{"app.example.com"}) || len(spec.HostNotes) != 2 {
		t.Errorf("Hosts %q notes %q, want the domain default and two notes", spec.Hosts, spec.HostNotes)
	}
}

func TestParseHostsFrom(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]string{
		"":              nil,
		"traefik,caddy": {"traefik", "caddy"},
		" Caddy , ":     {"caddy"},
		"caddy,caddy":   {"caddy"},
		"traefik":       {"traefik"},
	} {
		got, err := labels.ParseHostsFrom(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseHostsFrom(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := labels.ParseHostsFrom("traefik,nginx"); err == nil || !strings.Contains(err.Error(), `"nginx"`) {
		t.Errorf("ParseHostsFrom(nginx) error %v", err)
	}
}

// FuzzForeignHosts feeds label sets (the fuzz corpus encoding of
// FuzzParseLabels) to ForeignHosts: it must not panic, must be
// deterministic, and every host it returns must be one Parse would accept
// in the hosts label.
func FuzzForeignHosts(f *testing.F) {
	for _, seed := range []string{
		"traefik.http.routers.a.rule=Host(`a.io`) && PathPrefix(`/x`)",
		"traefik.http.routers.a.rule=Host(`a.io`, `b.io`) || !Host(`c.io`)\ncaddy=d.io",
		"traefik.http.routers.a.rule=HostRegexp(`.+`)\ncaddy_0=http://e.io:80, *.f.io\ncaddy_1=(snip)",
		"traefik.http.routers.a.rule=Host(\"\\x41.io\")\ncaddy={$X} [::1]:80 :80",
		"traefik.http.routers.a.rule=func(){}\ncaddy_99999999999=a.io",
	} {
		f.Add(seed)
	}
	from := []string{labels.SourceTraefik, labels.SourceCaddy}
	f.Fuzz(func(t *testing.T, encoded string) {
		in := decodeLabels(encoded)
		hosts, notes := labels.ForeignHosts(in, from)
		again, notes2 := labels.ForeignHosts(in, from)
		if !slices.Equal(hosts, again) || !slices.Equal(notes, notes2) {
			t.Fatalf("not deterministic: %+v %q vs %+v %q", hosts, notes, again, notes2)
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if seen[h.Host] {
				t.Errorf("host %q twice", h.Host)
			}
			seen[h.Host] = true
			if _, ok := in[h.Label]; !ok || (h.Source != labels.SourceTraefik && h.Source != labels.SourceCaddy) {
				t.Errorf("bad source %+v", h)
			}
			spec, err := labels.Parse(map[string]string{"sleeper.enable": "true", "sleeper.hosts": h.Host}, labels.Options{})
			if err != nil || !slices.Equal(spec.Hosts, []string{h.Host}) {
				t.Errorf("host %q from %s is not a valid hosts label: %v", h.Host, h.Label, err)
			}
		}
		in["sleeper.enable"] = "true"
		delete(in, "sleeper.hosts")
		if spec, err := labels.Parse(in, labels.Options{HostsFrom: from}); err == nil {
			checkHostSources(t, spec)
		}
	})
}
