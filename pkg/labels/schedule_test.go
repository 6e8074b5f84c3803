package labels_test

import (
	"strings"
	"testing"
	"time"

	"sleeper/pkg/labels"
)

func TestParseScheduleErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Mon-Fri 07:30-19:00, Sat 10:00-14:00", ""},
		{"07:00-09:00", ""},
		{"fri-mon 22:00-02:00", ""},
		{"Sun 00:00-24:00", ""},
		{"Mon-Fri 07:30-19:00, Sat 10:00-25:00", `window "Sat 10:00-25:00": time "25:00": out of range`},
		{"Mon-Fry 07:30-19:00", `window "Mon-Fry 07:30-19:00": day "Fry"`},
		{"Mon 7.30-19:00", `time "7.30": want HH:MM`},
		{"Mon 07:30", `time range "07:30": want HH:MM-HH:MM`},
		{"Mon 07:30-07:30", `time range "07:30-07:30" is empty`},
		{"Mon Tue 07:30-08:00", `want [DAYS] HH:MM-HH:MM`},
		{"Mon 24:00-08:00", `time "24:00": out of range`},
		{"Mon 07:30-08:00,", "empty window"},
		{"Mon 07:60-08:00", `time "07:60": out of range`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			_, err := labels.ParseSchedule(tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAwakeDuringLabelErrorNamesPart(t *testing.T) {
	t.Parallel()
	_, err := labels.Parse(map[string]string{
		"sleeper.enable":       "true",
		"sleeper.awake_during": "Mon-Fri 07:30-19:00, Sat 10:00-14:60",
	}, labels.Options{})
	if err == nil || !strings.Contains(err.Error(), "sleeper.awake_during") || !strings.Contains(err.Error(), `"14:60"`) {
		t.Fatalf("error %v, want one naming the label and the bad time", err)
	}
}

func TestPolicyLabels(t *testing.T) {
	t.Parallel()
	spec, err := labels.Parse(map[string]string{
		"sleeper.enable":       "true",
		"sleeper.awake_during": "Mon-Fri 07:30-19:00, Sat 10:00-14:00",
		"sleeper.group":        "media",
		"sleeper.busy_cpu":     "12.5%",
	}, labels.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.AwakeDuring.String(); got != "Mon-Fri 07:30-19:00, Sat 10:00-14:00" {
		t.Errorf("schedule %q", got)
	}
	if spec.Group != "media" || spec.BusyCPU != 12.5 {
		t.Errorf("group %q busy %v", spec.Group, spec.BusyCPU)
	}
	for k, v := range map[string]string{"sleeper.group": "-x", "sleeper.busy_cpu": "0%"} {
		if _, err := labels.Parse(map[string]string{"sleeper.enable": "true", k: v}, labels.Options{}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v", k, v, err)
		}
	}
}

func TestScheduleActiveAndNext(t *testing.T) {
	t.Parallel()
	s, err := labels.ParseSchedule("Mon-Fri 07:30-19:00, Sat 10:00-14:00, Sun 22:00-02:00")
	if err != nil {
		t.Fatal(err)
	}
	loc := time.FixedZone("X", 2*3600)
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, loc) } // 2026-11-02 is a Monday
	for _, tc := range []struct {
		name   string
		t      time.Time
		active bool
		end    time.Time
		next   time.Time
	}{
		{"monday morning inside", at(2, 8, 0), true, at(2, 19, 0), at(3, 7, 30)},
		{"monday before", at(2, 7, 29), false, time.Time{}, at(2, 7, 30)},
		{"monday at end", at(2, 19, 0), false, time.Time{}, at(3, 7, 30)},
		{"friday evening", at(6, 20, 0), false, time.Time{}, at(7, 10, 0)},
		{"saturday noon", at(7, 12, 0), true, at(7, 14, 0), at(8, 22, 0)},
		{"sunday night past midnight", at(9, 1, 0), true, at(9, 2, 0), at(9, 7, 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			end, ok := s.Active(tc.t)
			if ok != tc.active || !end.Equal(tc.end) {
				t.Errorf("Active = %v, %v; want %v, %v", end, ok, tc.end, tc.active)
			}
			if next := s.Next(tc.t); !next.Equal(tc.next) {
				t.Errorf("Next = %v, want %v", next, tc.next)
			}
		})
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, seed := range []string{"Mon-Fri 07:30-19:00, Sat 10:00-14:00", "07:00-09:00", "Fri-Mon 22:00-02:00",
		"Sun 00:00-24:00", "Mon 7:5-8", ",", "Mon-Fry 1:00-2:00", "mon-mon 23:59-00:00"} {
		f.Add(seed)
	}
	ref := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := labels.ParseSchedule(in)
		if err != nil {
			return
		}
		// The normalised form parses to the same schedule.
		again, err := labels.ParseSchedule(s.String())
		if err != nil || again.String() != s.String() {
			t.Fatalf("round trip of %q: %q, %v", in, again.String(), err)
		}
		if end, ok := s.Active(ref); ok && !end.After(ref) {
			t.Fatalf("active window ends at %v, not after %v", end, ref)
		}
		if next := s.Next(ref); next.IsZero() || !next.After(ref) {
			t.Fatalf("next window %v is not after %v", next, ref)
		}
	})
}
