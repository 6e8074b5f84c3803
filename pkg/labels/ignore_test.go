package labels_test

import (
	"net/netip"
	"slices"
	"testing"

	"sleeper/pkg/labels"
)

// TestParseValidIgnore covers the ignore_* labels: requests that neither
// wake nor count as activity.
func TestParseValidIgnore(t *testing.T) {
	t.Parallel()
	runValid(t, []validCase{
		{"ignore_agents lower-cased", map[string]string{"ignore_agents": "My-Checker, curl/ "}, nil, func(s *labels.Spec) {
			s.IgnoreAgents = []string{"my-checker", "curl/"}
		}},
		{"ignore_agents same twice is one", map[string]string{"ignore_agents": "Bot,bot"}, nil, func(s *labels.Spec) {
			s.IgnoreAgents = []string{"bot"}
		}},
		{"ignore_cidrs", map[string]string{"ignore_cidrs": "10.1.2.3/8, 192.0.2.7,2001:db8::/32,::ffff:198.51.100.0/120"}, nil, func(s *labels.Spec) {
			s.IgnoreCIDRs = []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("192.0.2.7/32"),
				netip.MustParsePrefix("2001:db8::/32"),
				netip.MustParsePrefix("198.51.100.0/24"),
			}
		}},
		{"ignore_paths", map[string]string{"ignore_paths": "/healthz, /api/ping"}, nil, func(s *labels.Spec) {
			s.IgnorePaths = []string{"/healthz", "/api/ping"}
		}},
	})
}

func TestParseErrorsIgnore(t *testing.T) {
	t.Parallel()
	runErrors(t, []errorCase{
		{"ignore_agents empty item", map[string]string{"ignore_agents": "a,,b"}, "ignore_agents", "empty item"},
		{"ignore_agents control", map[string]string{"ignore_agents": "a\x01b"}, "ignore_agents", "control"},
		{"ignore_cidrs bad", map[string]string{"ignore_cidrs": "10.0.0.0/33"}, "ignore_cidrs", "not a CIDR"},
		{"ignore_cidrs name", map[string]string{"ignore_cidrs": "10.0.0.0/8,example.com"}, "ignore_cidrs", `"example.com"`},
		{"ignore_cidrs twice", map[string]string{"ignore_cidrs": "10.0.0.0/8,10.9.9.9/8"}, "ignore_cidrs", "twice"},
		{"ignore_paths relative", map[string]string{"ignore_paths": "healthz"}, "ignore_paths", "start with /"},
		{"ignore_paths query", map[string]string{"ignore_paths": "/a?x"}, "ignore_paths", "?"},
		{"ignore_paths twice", map[string]string{"ignore_paths": "/a,/a"}, "ignore_paths", "twice"},
	})
}

func TestParseAgents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{" , ", nil, false},
		{"Uptime-Kuma,UptimeRobot", []string{"uptime-kuma", "uptimerobot"}, false},
		{"a\nb", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := labels.ParseAgents(tc.in)
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseAgents(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
