package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/trace"
)

// DefaultRecentEvents is how many of the latest events the handler shows
// unless the request asks for another number (?events=N).
const DefaultRecentEvents = 100

// maxRecentEvents bounds ?events=N.
const maxRecentEvents = 1 << 20

// Handler returns an http.Handler that serves the admin service's live view
// — subchannels, recent events and the leak check — as a small HTML page
// with no external assets, or as JSON. Mount it under any prefix, as with
// net/http/pprof:
//
//	mux.Handle("/debug/leakproof/", admin.Handler())
//
// The format follows the path's last element or ?format=:
//
//	.../        (or ?format=html)  the HTML page
//	.../json    (or ?format=json)  one JSON object: managers, subchannels (with their channelz ids), events, check
//	.../trace   (or ?format=jsonl) the rings' events as a JSON-lines trace, for `leakproof trace check -`
//
// Query parameters: target=T (only channel T), events=N (the latest N
// events; default DefaultRecentEvents, -1 for all the rings hold),
// grace=DURATION (the leak check's grace period; default DefaultGracePeriod).
// A bad parameter is a 400 naming it.
func Handler() http.Handler { return handler{} }

type handler struct{}

// view is the handler's JSON document, and what its HTML page shows.
type view struct {
	Time                 time.Time        `json:"time"`
	Target               string           `json:"target,omitempty"`
	Managers             []managerView    `json:"managers"`
	Subchannels          []subchannelView `json:"subchannels"`
	Events               []trace.Event    `json:"events"`
	Check                trace.LiveReport `json:"check"`
	ActiveWatchers       int64            `json:"active_watchers"`
	DroppedWatchers      uint64           `json:"dropped_watchers"`
	DroppedSubscriptions uint64           `json:"dropped_subscriptions"`
}

// managerView is one manager on the page: its counters are the manager's
// Stats itself, so that a counter added there shows here and in the JSON
// (under its snake_case name, as in the proto's ManagerStats).
type managerView struct {
	ID     uint64
	Target string
	Closed bool
	trace.Stats
}

// MarshalJSON writes the manager as one flat object: id, target, closed,
// then every Stats field.
func (m managerView) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%d,"target":%s,"closed":%t`, m.ID, jsonString(m.Target), m.Closed)
	v := reflect.ValueOf(m.Stats)
	for i := range v.NumField() {
		val, err := json.Marshal(v.Field(i).Interface())
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, ",%q:%s", snakeCase(v.Type().Field(i).Name), val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// snakeCase turns a Go field name (SocketsOpened) into the proto's field
// name (sockets_opened).
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "admin: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		switch {
		case strings.HasSuffix(r.URL.Path, "/json"):
			format = "json"
		case strings.HasSuffix(r.URL.Path, "/trace"):
			format = "jsonl"
		default:
			format = "html"
		}
	}
	n := DefaultRecentEvents
	if s := q.Get("events"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < -1 || v > maxRecentEvents {
			http.Error(w, fmt.Sprintf("admin: events=%q: want a number of events from 0 to %d, or -1 for all", s, maxRecentEvents), http.StatusBadRequest)
			return
		}
		n = v
	}
	grace := DefaultGracePeriod
	if s := q.Get("grace"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			http.Error(w, fmt.Sprintf("admin: grace=%q: want a positive Go duration such as 30s", s), http.StatusBadRequest)
			return
		}
		grace = d
	}
	target := q.Get("target")

	ms := collect(target)
	if format == "jsonl" {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, e := range recentEvents(ms, n) {
			if err := enc.Encode(e); err != nil {
				http.Error(w, "admin: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write(buf.Bytes())
		return
	}
	now := time.Now()
	v := view{
		Time:                 now,
		Target:               target,
		Managers:             []managerView{},
		Subchannels:          []subchannelView{},
		Events:               recentEvents(ms, n),
		Check:                trace.CheckLive(now, grace, ms),
		ActiveWatchers:       max(watchers.active.Load(), 0),
		DroppedWatchers:      watchers.dropped.Load(),
		DroppedSubscriptions: trace.DroppedSubscriptions(),
	}
	join := channelzJoin(r.Context())
	for _, si := range allSubchannels(ms) {
		v.Subchannels = append(v.Subchannels, joinChannelz(si, join))
	}
	if v.Events == nil {
		v.Events = []trace.Event{}
	}
	for _, m := range ms {
		v.Managers = append(v.Managers, managerView{ID: m.ID, Target: m.Target, Closed: m.Closed, Stats: m.Stats})
	}
	var buf bytes.Buffer
	switch format {
	case "json":
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			http.Error(w, "admin: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
	case "html":
		if err := page.Execute(&buf, v); err != nil {
			http.Error(w, "admin: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	default:
		http.Error(w, fmt.Sprintf("admin: format=%q: want html, json or jsonl", format), http.StatusBadRequest)
		return
	}
	w.Write(buf.Bytes())
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"ms": func(d jsontime.Duration) string { return time.Duration(d).Round(time.Millisecond).String() },
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format("15:04:05.000")
	},
	"join": strings.Join,
	"newestFirst": func(evs []trace.Event) []trace.Event {
		out := slices.Clone(evs)
		slices.Reverse(out)
		return out
	},
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>leakproof subchannels</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.n { text-align: right; }
code, td.m { font-family: ui-monospace, monospace; font-size: 13px; }
.bad { color: #a00; font-weight: bold; }
.ok { color: #070; font-weight: bold; }
.dim { color: #777; }
</style></head>
<body>
<h1>leakproof subchannels</h1>
<p class="dim">{{.Time.Format "2006-01-02 15:04:05.000 MST"}}{{if .Target}} · target <code>{{.Target}}</code>{{end}}
· <a href="?format=json">JSON</a> · <a href="?format=jsonl">JSON-lines trace</a>
· watchers {{.ActiveWatchers}} active, {{.DroppedWatchers}} dropped · subscriptions dropped {{.DroppedSubscriptions}}</p>

<h2>Leak check</h2>
{{with .Check}}{{if .Problems}}<p class="bad">{{len .Problems}} problem(s)</p>
<table><tr><th>kind</th><th>subchannel</th><th>key</th><th>target</th><th>what</th><th>evidence</th></tr>
{{range .Problems}}<tr><td class="m">{{.Kind}}</td><td class="n">#{{.Subchannel}}</td><td class="m">{{.Key}}</td><td class="m">{{.Target}}</td><td>{{.Message}}</td>
<td class="m">{{range .Events}}{{.String}}<br>{{end}}</td></tr>
{{end}}</table>
{{else}}<p class="ok">clean</p>{{end}}
<p class="dim">{{.Subchannels}} subchannel(s), {{.Draining}} draining within the grace period of {{ms .GracePeriod}}, {{.EventsChecked}} ring event(s) replayed</p>{{end}}

<h2>Managers</h2>
<table><tr><th>id</th><th>target</th><th>closed</th><th>created</th><th>destroyed</th><th>refs/unrefs</th><th>leaks</th><th>orphans</th><th>sockets opened/closed</th><th>drain timeouts</th><th>connections lost</th></tr>
{{range .Managers}}<tr><td class="n">{{.ID}}</td><td class="m">{{.Target}}</td><td>{{if .Closed}}closed{{end}}</td><td class="n">{{.Created}}</td><td class="n">{{.Destroyed}}</td><td class="n">{{.Refs}}/{{.Unrefs}}</td><td class="n">{{.Leaks}}</td><td class="n">{{.Orphans}}</td><td class="n">{{.SocketsOpened}}/{{.SocketsClosed}}</td><td class="n">{{.DrainTimeouts}}</td><td class="m">{{range $k, $v := .ConnectionsLost}}{{$k}}={{$v}} {{end}}</td></tr>
{{else}}<tr><td colspan="11" class="dim">no leakproof manager in this process</td></tr>
{{end}}</table>

<h2>Subchannels</h2>
<table><tr><th>id</th><th>channelz</th><th>manager</th><th>target</th><th>key</th><th>state</th><th>refs</th><th>holders</th><th>sockets (channelz id)</th><th>age</th><th>shutdown</th><th>lost</th><th>last loss</th></tr>
{{range .Subchannels}}<tr><td class="n">#{{.ID}}</td><td class="m">{{if .ChannelzSubchannelID}}subchannel {{.ChannelzSubchannelID}}<br>channel {{.ChannelzChannelID}}{{end}}</td><td class="n">{{.Manager}}</td><td class="m">{{.Target}}</td><td class="m">{{.Key}}</td><td>{{.State}}</td><td class="n">{{.Refs}}</td><td class="m">{{join .Holders ", "}}</td>
<td class="m">{{range .Sockets}}{{.ID}}{{if .ChannelzSocketID}} (channelz {{.ChannelzSocketID}}){{end}}: {{.Local}}→{{.Remote}} since {{clock .Opened}}{{if .GoAway}} goaway{{end}}<br>{{end}}{{if .Dialing}}{{.Dialing}} dialing{{end}}</td>
<td>{{ms .Age}}</td><td>{{if .Shutdown}}<span class="bad">at {{clock .ShutdownAt}}</span>{{end}}</td><td class="n">{{.ConnectionsLost}}</td><td class="m">{{.LastLoss}}</td></tr>
{{else}}<tr><td colspan="13" class="dim">no subchannel alive</td></tr>
{{end}}</table>

<h2>Recent events (newest first)</h2>
<table><tr><th>seq</th><th>time</th><th>target</th><th>event</th></tr>
{{range newestFirst .Events}}<tr><td class="n">{{.Seq}}</td><td>{{clock .Time}}</td><td class="m">{{.Target}}</td><td class="m">{{.String}}</td></tr>
{{else}}<tr><td colspan="4" class="dim">no events in the rings</td></tr>
{{end}}</table>
</body></html>
`
