package labels

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is one keep-warm window of the awake_during label: a time range on
// some days of the week. Times are minutes after midnight in the schedule's
// time zone (--timezone), which the watcher applies: the label is pure.
// End may be before Start (22:00-02:00): the window then runs past midnight
// into the next day, and belongs to the day it starts on.
type Window struct {
	Days  [7]bool // by time.Weekday: Days[time.Monday]
	Start int     // minutes after midnight, 0..1439
	End   int     // minutes after midnight, 1..1440 (24:00)
}

// Schedule is the parsed awake_during label: the union of its windows.
type Schedule []Window

// dayNames maps the three-letter day names (any case) to weekdays.
var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseSchedule reads windows like "Mon-Fri 07:30-19:00, Sat 10:00-14:00":
// comma-separated windows, each an optional day or day range (Mon, Mon-Fri,
// Fri-Mon wrapping over the week end; none means every day) and a time range
// HH:MM-HH:MM (24:00 allowed as an end). The error names the part that is
// wrong.
func ParseSchedule(v string) (Schedule, error) {
	var s Schedule
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty window in comma list")
		}
		w, err := parseWindow(part)
		if err != nil {
			return nil, fmt.Errorf("window %q: %w", part, err)
		}
		s = append(s, w)
	}
	return s, nil
}

func parseWindow(part string) (Window, error) {
	fields := strings.Fields(part)
	var w Window
	var times string
	switch len(fields) {
	case 1:
		times = fields[0]
		for d := range w.Days {
			w.Days[d] = true
		}
	case 2:
		days, err := parseDays(fields[0])
		if err != nil {
			return w, err
		}
		w.Days, times = days, fields[1]
	default:
		return w, fmt.Errorf("want [DAYS] HH:MM-HH:MM, e.g. Mon-Fri 07:30-19:00")
	}
	from, to, ok := strings.Cut(times, "-")
	if !ok {
		return w, fmt.Errorf("time range %q: want HH:MM-HH:MM", times)
	}
	var err error
	if w.Start, err = parseClock(from, false); err != nil {
		return w, err
	}
	if w.End, err = parseClock(to, true); err != nil {
		return w, err
	}
	if w.Start == w.End {
		return w, fmt.Errorf("time range %q is empty", times)
	}
	return w, nil
}

// parseDays reads "Mon" or "Mon-Fri"; a range may wrap ("Fri-Mon").
func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	from, to, isRange := strings.Cut(s, "-")
	first, ok := dayNames[strings.ToLower(from)]
	if !ok {
		return days, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", from)
	}
	last := first
	if isRange {
		if last, ok = dayNames[strings.ToLower(to)]; !ok {
			return days, fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat or Sun", to)
		}
	}
	for d := first; ; d = (d + 1) % 7 {
		days[d] = true
		if d == last {
			break
		}
	}
	return days, nil
}

// parseClock reads HH:MM (H:MM too); 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || len(mm) != 2 || len(hh) < 1 || len(hh) > 2 || !isDigits(hh) || !isDigits(mm) {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	h, _ := strconv.Atoi(hh)
	m, _ := strconv.Atoi(mm)
	if m > 59 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, fmt.Errorf("time %q: out of range (00:00-23:59, 24:00 as an end)", s)
	}
	return h*60 + m, nil
}

// occurrence is one concrete stretch of a window.
type occurrence struct{ start, end time.Time }

// occurrences lists the stretches of the schedule that start on the day
// before t's day through six days after, in t's location: enough to find
// the one containing t and the next one.
func (s Schedule) occurrences(t time.Time) []occurrence {
	var out []occurrence
	y, mo, d := t.Date()
	for off := -1; off <= 7; off++ {
		day := time.Date(y, mo, d+off, 0, 0, 0, 0, t.Location())
		for _, w := range s {
			if !w.Days[day.Weekday()] {
				continue
			}
			// Clock times, not durations: a window on a DST change day
			// still starts at the clock time the user wrote.
			start := time.Date(y, mo, d+off, w.Start/60, w.Start%60, 0, 0, t.Location())
			endDay := d + off
			if w.End <= w.Start {
				endDay++
			}
			end := time.Date(y, mo, endDay, w.End/60, w.End%60, 0, 0, t.Location())
			out = append(out, occurrence{start, end})
		}
	}
	return out
}

// Active reports whether t is inside a window and, if so, when that stretch
// ends (the latest end among overlapping windows that contain t).
func (s Schedule) Active(t time.Time) (end time.Time, ok bool) {
	for _, o := range s.occurrences(t) {
		if !t.Before(o.start) && t.Before(o.end) && o.end.After(end) {
			end, ok = o.end, true
		}
	}
	return end, ok
}

// Next returns the start of the first window that begins after t, or zero
// for an empty schedule.
func (s Schedule) Next(t time.Time) time.Time {
	var next time.Time
	for _, o := range s.occurrences(t) {
		if o.start.After(t) && (next.IsZero() || o.start.Before(next)) {
			next = o.start
		}
	}
	return next
}

// String renders the schedule in the label's syntax, normalised.
func (s Schedule) String() string {
	parts := make([]string, 0, len(s))
	for _, w := range s {
		parts = append(parts, w.String())
	}
	return strings.Join(parts, ", ")
}

// String renders one window: "Mon-Fri 07:30-19:00", days omitted when
// every day. Parsed windows always hold one run of days, which is what
// this renders.
func (w Window) String() string {
	clock := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	times := clock(w.Start) + "-" + clock(w.End)
	names := [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	first := -1
	for d := range w.Days {
		if w.Days[d] && !w.Days[(d+6)%7] {
			first = d
			break
		}
	}
	if first < 0 {
		return times // every day (or none, which parsing never yields)
	}
	last := first
	for w.Days[(last+1)%7] && (last+1)%7 != first {
		last = (last + 1) % 7
	}
	if last == first {
		return names[first] + " " + times
	}
	return names[first] + "-" + names[last] + " " + times
}
