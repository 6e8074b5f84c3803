package labels_test

import (
	"net/netip"
	"testing"

	"sleeper/pkg/labels"
)

func TestParseStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want labels.Stream
		str  string // canonical form from String
	}{
		{"5432:5432", labels.Stream{Listen: 5432, Target: 5432, Protocol: labels.TCP}, "5432:5432/tcp"},
		{" 53:5353/UDP ", labels.Stream{Listen: 53, Target: 5353, Protocol: labels.UDP}, "53:5353/udp"},
		{"127.0.0.1:01:2/tcp", labels.Stream{IP: netip.MustParseAddr("127.0.0.1"), Listen: 1, Target: 2, Protocol: labels.TCP}, "127.0.0.1:1:2/tcp"},
		{"[::1]:6379:6379", labels.Stream{IP: netip.MustParseAddr("::1"), Listen: 6379, Target: 6379, Protocol: labels.TCP}, "[::1]:6379:6379/tcp"},
		{"[::ffff:10.0.0.1]:1:1/udp", labels.Stream{IP: netip.MustParseAddr("::ffff:10.0.0.1"), Listen: 1, Target: 1, Protocol: labels.UDP}, "[::ffff:10.0.0.1]:1:1/udp"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := labels.ParseStream(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseStream(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}

func TestParseStreamErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "5432", ":", "1:", ":1", "1:2:3", "::1:1:1", "[::1]", "[::1]:1", "[::1]1:1", "[::1:1:1",
		"1-2:3", "1:2-3", "a:b", "1:2/sctp", "1:2/", "1:2/tcp/udp", "[fe80::1%eth0]:1:1",
		"127.0.0.1::5432", "65536:1", "0:1", "1:0", "[1.2.3.4]:1:1", "host:1:2", "+1:2", "1:2 /tcp",
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			if st, err := labels.ParseStream(in); err == nil {
				t.Errorf("ParseStream(%q) = %+v, want an error", in, st)
			}
		})
	}
}
