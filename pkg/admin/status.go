package admin

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"sleeper/pkg/watcher"
)

// statusTemplate is the status page: plain HTML that refreshes itself, no
// script and no external asset, so it works from a locked-down network and
// in any browser. html/template escapes every value: container names and
// error texts come from labels anyone with Docker access can write.
var statusTemplate = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>sleeper</title>
<style>
:root { --bg: #fff; --fg: #1b1f24; --muted: #667085; --line: #e4e7ec; --head: #f6f7f9;
  --ready: #127a3a; --asleep: #5b6b86; --waking: #a15c00; --error: #b42318; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111418; --fg: #e6e8eb; --muted: #98a2b3; --line: #2b313a; --head: #1a1f26;
    --ready: #4ade80; --asleep: #9aa8bf; --waking: #fbbf24; --error: #f87171; }
}
body { margin: 2rem; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
p.sub { color: var(--muted); margin: 0 0 1.25rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td.name { font-weight: 500; white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.state { font-weight: 600; }
.ready { color: var(--ready); } .asleep, .unmanaged { color: var(--asleep); }
.waking, .stopping { color: var(--waking); } .error, td.err { color: var(--error); }
td.err { max-width: 40rem; overflow-wrap: anywhere; }
a { color: inherit; }
footer { color: var(--muted); margin-top: 1.25rem; font-size: .85rem; }
</style>
</head>
<body>
<h1>sleeper</h1>
<p class="sub">{{len .Rows}} container{{if ne (len .Rows) 1}}s{{end}} · {{.Awake}} awake{{if .Freed}} · <span class="freed">{{.Freed}} freed by sleeping</span>{{end}} · refreshed {{.Now}}</p>
<table>
<thead><tr><th>Name</th><th>State</th><th>Hosts</th><th>Sleeps in</th><th>Last wake</th><th>Ready when</th>{{if .ShowWakes}}<th>Wakes</th>{{end}}<th>Memory freed</th><th>Policy</th><th>Error</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr><td class="name">{{.Name}}</td><td class="state {{.State}}">{{.State}}</td><td>{{.Hosts}}</td><td class="num">{{.SleepsIn}}</td><td class="num">{{.LastWake}}</td><td>{{.Readiness}}</td>{{if $.ShowWakes}}<td class="num">{{.Wakes}}</td>{{end}}<td class="num memory">{{.Memory}}</td><td class="policy">{{.Policy}}</td><td class="err">{{.Error}}</td></tr>
{{- else}}
<tr><td colspan="{{if .ShowWakes}}10{{else}}9{{end}}">No container carries the enable label yet.</td></tr>
{{- end}}
</tbody>
</table>
<footer>sleeper {{.Version}} · <a href="/api/containers">JSON</a> · <a href="/metrics">metrics</a></footer>
</body>
</html>
`))

// statusRow is one table row, already formatted.
type statusRow struct {
	Name, State, Hosts, SleepsIn, LastWake, Readiness, Wakes, Error string
	Memory, Policy                                                  string // memory freed; group, schedule, busy guard
}

// statusData feeds statusTemplate.
type statusData struct {
	Rows      []statusRow
	Awake     int
	Freed     string // total memory freed by sleeping containers now; "" when none
	ShowWakes bool
	Now       string
	Version   string
}

func (s *server) statusPage(rw http.ResponseWriter, _ *http.Request) {
	now := s.now()
	data := statusData{ShowWakes: s.cfg.Wakes != nil, Now: now.Format("15:04:05"), Version: s.cfg.Version}
	var freed uint64
	for _, info := range s.list() {
		row := statusRow{
			Name:     info.Name,
			State:    StateUnmanaged,
			Hosts:    strings.Join(info.Hosts, ", "),
			SleepsIn: sleepsIn(info, now),
			LastWake: formatWake(info.LastWake),
			Error:    info.Error,
		}
		if info.Managed {
			row.State = info.State.String()
			row.Readiness = info.Readiness
		}
		if info.Managed && info.State == watcher.StateReady {
			data.Awake++
		}
		row.Memory, row.Policy = memoryFreed(info), policyText(info, now)
		freed += info.MemoryFreed
		row.Wakes = "—"
		if s.cfg.Wakes != nil && info.Managed {
			row.Wakes = strconv.FormatUint(s.cfg.Wakes.Wakes(info.Name), 10)
		}
		data.Rows = append(data.Rows, row)
	}
	if freed > 0 {
		data.Freed = formatBytes(freed)
	}
	// Render to a buffer first so that a template error is a clean 500, not
	// half a page.
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, data); err != nil {
		s.log.Error("render status page", "error", err)
		http.Error(rw, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(rw)
}

// sleepsIn is the idle time left: when a ready container will sleep unless a
// request comes first.
func sleepsIn(info watcher.Info, now time.Time) string {
	switch {
	case !info.Managed || info.State != watcher.StateReady:
		return "—"
	case info.InWindow:
		return "after window" // a keep-warm window: not before it ends
	case info.IdleTimeout <= 0 || info.SleepsAt.IsZero():
		return "never"
	}
	left := info.SleepsAt.Sub(now)
	if info.InFlight > 0 {
		return "busy" // the idle timer waits for open requests and connections
	}
	if left <= 0 {
		return "now"
	}
	return left.Round(time.Second).String()
}

func formatWake(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}
