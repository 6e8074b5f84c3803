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

// statusTemplate is the status page: plain HTML with its stylesheet and
// one small script served by the admin listener itself (static/), no
// external asset, so it works from a locked-down network. Without script
// it still refreshes itself (noscript). The script refreshes it, and, with
// --admin-token set, drives the wake and sleep buttons (statusCSP forbids
// any inline code). html/template escapes every value: container names
// and error texts come from labels anyone with Docker access can write.
var statusTemplate = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<noscript><meta http-equiv="refresh" content="5"></noscript>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>sleeper</title>
<link rel="stylesheet" href="/static/status.css">
<script src="/static/status.js" defer></script>
</head>
<body>
<h1>sleeper</h1>
<form id="token-form" hidden><label>Admin token<input id="token" type="password" autocomplete="off" spellcheck="false"></label><button type="submit">Use</button><span class="note">kept in this tab until it closes</span></form>
<p id="msg" role="status"></p>
<p class="sub">{{len .Rows}} container{{if ne (len .Rows) 1}}s{{end}} · {{.Awake}} awake{{if .Freed}} · <span class="freed">{{.Freed}} freed by sleeping</span>{{end}} · refreshed {{.Now}}</p>
<table>
<thead><tr><th>Name</th><th>State</th><th>Hosts</th><th>Sleeps in</th><th>Last wake</th><th>Ready when</th>{{if .ShowWakes}}<th>Wakes</th>{{end}}<th>Memory freed</th><th>Policy</th><th>Error</th>{{if .Actions}}<th>Actions</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr><td class="name">{{.Name}}</td><td class="state {{.State}}">{{.State}}</td><td>{{.Hosts}}</td><td class="num">{{.SleepsIn}}</td><td class="num">{{.LastWake}}</td><td>{{.Readiness}}</td>{{if $.ShowWakes}}<td class="num">{{.Wakes}}</td>{{end}}<td class="num memory">{{.Memory}}</td><td class="policy">{{.Policy}}</td><td class="err">{{.Error}}</td>{{if $.Actions}}<td class="act">{{if .Managed}}<button type="button" data-action="wake" data-name="{{.Name}}">Wake</button><button type="button" data-action="sleep" data-name="{{.Name}}">Sleep</button>{{end}}</td>{{end}}</tr>
{{- else}}
<tr><td colspan="{{.Columns}}">No container carries the enable label yet.</td></tr>
{{- end}}
</tbody>
</table>
<footer>sleeper {{.Version}} · <a href="/api/containers">JSON</a> · <a href="/metrics">metrics</a>{{if not .Actions}} · wake and sleep buttons need --admin-token{{end}}</footer>
</body>
</html>
`))

// statusRow is one table row, already formatted.
type statusRow struct {
	Name, State, Hosts, SleepsIn, LastWake, Readiness, Wakes, Error string
	Memory, Policy                                                  string // memory freed; group, schedule, busy guard
	Managed                                                         bool   // has buttons
}

// statusData feeds statusTemplate.
type statusData struct {
	Rows      []statusRow
	Awake     int
	Freed     string // total memory freed by sleeping containers now; "" when none
	ShowWakes bool
	// Actions shows the wake and sleep buttons: the mutating API is on.
	Actions bool
	Columns int // of the table, for the empty row
	Now     string
	Version string
}

func (s *server) statusPage(rw http.ResponseWriter, _ *http.Request) {
	now := s.now()
	data := statusData{ShowWakes: s.cfg.Wakes != nil, Actions: s.tokenHash != nil, Now: now.Format("15:04:05"), Version: s.cfg.Version}
	data.Columns = 9
	if data.ShowWakes {
		data.Columns++
	}
	if data.Actions {
		data.Columns++
	}
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
			row.Managed = true
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
	rw.Header().Set("Content-Security-Policy", statusCSP)
	rw.Header().Set("X-Content-Type-Options", "nosniff")
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
