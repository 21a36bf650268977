package soak

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// WriteHTML writes the result as a self-contained HTML page (no script, no
// external resource): the verdict table, time-series plots of goroutines,
// descriptors, sockets per backend, live subchannels and RPCs as inline SVG
// with the faults marked on the time axis, each fault's maximum sockets per
// backend, and the removals that leaked. Attach it to CI runs.
func (r *Result) WriteHTML(w io.Writer) error {
	return reportTmpl.Execute(w, r.reportData())
}

type reportData struct {
	R         *Result
	Title     string
	Status    string
	Generated string
	Charts    []template.HTML
	Legend    template.HTML
	Phases    []phaseRow
	Leaks     []Removal
	Removals  string
	Bound     string
}

type phaseRow struct {
	Fault             Fault
	Window            string
	Max, CompareMax   string
	Evidence, Error   string
	Color             string
	MaxOver1, CmpOver bool
}

func (r *Result) reportData() reportData {
	d := reportData{
		R:         r,
		Title:     fmt.Sprintf("leakproof soak: %s%s", r.Policy, r.underXDS()),
		Status:    "PASS",
		Generated: r.Started.Format(time.RFC3339),
		Bound:     time.Duration(r.RemovalBound).String(),
	}
	if !r.Pass {
		d.Status = "FAIL"
	}
	order := r.backendOrder()
	for _, p := range r.Phases {
		row := phaseRow{
			Fault: p.Fault, Window: window(p.Start, p.End),
			Max: formatCounts(p.MaxSockets, order), CompareMax: formatCounts(p.CompareMaxSockets, order),
			Evidence: p.Evidence, Error: p.Error, Color: faultColor(p.Fault),
		}
		for _, n := range p.MaxSockets {
			row.MaxOver1 = row.MaxOver1 || n > 1
		}
		for _, n := range p.CompareMaxSockets {
			row.CmpOver = row.CmpOver || n > 1
		}
		d.Phases = append(d.Phases, row)
	}
	for _, rm := range r.Removals.List {
		if rm.Outcome == RemovalLeaked {
			d.Leaks = append(d.Leaks, rm)
		}
	}
	d.Removals = removalCheck("", r.Removals, time.Duration(r.RemovalBound)).Detail
	d.Charts = r.charts()
	d.Legend = r.faultLegend()
	return d
}

// Colours of the faults' bands, by timeline position.
var bandColors = []string{
	"#fde2e2", "#e2ecfd", "#e5f7e0", "#fdf1d8", "#efe2fd", "#dff6f6",
	"#fbe3f1", "#eeeeee", "#f6f3d0", "#dfe7f3", "#f3e1d6",
}

func faultColor(f Fault) string {
	if i := slices.Index(AllFaults(), f); i >= 0 {
		return bandColors[i%len(bandColors)]
	}
	return "#eeeeee"
}

// Colours of the lines.
var lineColors = []string{
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
	"#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
}

type series struct {
	name   string
	color  string
	dash   string // stroke-dasharray, "" for solid
	points []float64
}

// maxPoints bounds the points of a plotted line; longer runs are reduced
// to the maximum of each bucket, so that no spike disappears.
const maxPoints = 1200

func (r *Result) charts() []template.HTML {
	if len(r.Samples) == 0 {
		return nil
	}
	xs := make([]float64, len(r.Samples))
	for i, s := range r.Samples {
		xs[i] = time.Duration(s.At).Seconds()
	}
	col := func(f func(Sample) float64) []float64 {
		out := make([]float64, len(r.Samples))
		for i, s := range r.Samples {
			out[i] = f(s)
		}
		return out
	}
	var out []template.HTML
	out = append(out, r.chart("Goroutines", xs, []series{{name: "goroutines", color: lineColors[0], points: col(func(s Sample) float64 { return float64(s.Goroutines) })}}))
	out = append(out, r.chart("Open file descriptors", xs, []series{{name: "fds", color: lineColors[0], points: col(func(s Sample) float64 { return float64(s.FDs) })}}))
	// The descriptor books: each owner its own line.
	owners := []series{
		{name: ownerClient, color: lineColors[0], points: col(func(s Sample) float64 { return float64(s.ClientFDs) })},
		{name: ownerOther, color: lineColors[7], dash: "5,3", points: col(func(s Sample) float64 { return float64(s.OtherFDs) })},
	}
	held := []series{}
	for i, b := range r.Backends {
		owners = append(owners, series{name: backendOwner(b.Name), color: lineColors[(i+1)%len(lineColors)], points: col(func(s Sample) float64 { return float64(s.BackendFDs[b.Name]) })})
		if slices.ContainsFunc(r.Samples, func(s Sample) bool { return s.Held[b.Name] > 0 }) {
			held = append(held, series{name: b.Name, color: lineColors[(i+1)%len(lineColors)], points: col(func(s Sample) float64 { return float64(s.Held[b.Name]) })})
		}
	}
	out = append(out, r.chart("Descriptors by owner: the channels under test, each backend (listener and connections, held ones included), everything else", xs, owners))
	if len(held) > 0 {
		out = append(out, r.chart("Connections held by backends (frozen: accepted, never answered)", xs, held))
	}
	out = append(out, r.chart("Go heap, MiB: in use, and live after the last GC", xs, []series{
		{name: "in use", color: lineColors[0], points: col(func(s Sample) float64 { return math.Round(float64(s.HeapInUse)/mib*10) / 10 })},
		{name: "live", color: lineColors[3], dash: "5,3", points: col(func(s Sample) float64 { return math.Round(float64(s.HeapLive)/mib*10) / 10 })},
	}))

	sockets := func(title string, get func(Sample) map[string]int) {
		var ss []series
		for i, b := range r.Backends {
			seen := false
			for _, s := range r.Samples {
				seen = seen || get(s)[b.Name] > 0
			}
			if seen {
				ss = append(ss, series{name: b.Name, color: lineColors[i%len(lineColors)], points: col(func(s Sample) float64 { return float64(get(s)[b.Name]) })})
			}
		}
		out = append(out, r.chart(title, xs, ss))
	}
	sockets("Sockets per backend: "+r.Policy, func(s Sample) map[string]int { return s.Sockets })
	if r.Compare != "" {
		sockets("Sockets per backend: "+r.Compare+" (comparison)", func(s Sample) map[string]int { return s.CompareSockets })
	}
	out = append(out, r.chart("Sockets of churned and TLS channels, all backends", xs, []series{{name: "sockets", color: lineColors[9], points: col(func(s Sample) float64 { return float64(s.OtherSockets) })}}))
	out = append(out, r.chart("Live subchannels, references and manager records (leakproof managers)", xs, []series{
		{name: "subchannels", color: lineColors[0], points: col(func(s Sample) float64 { return float64(s.Subchannels) })},
		{name: "records", color: lineColors[2], dash: "2,2", points: col(func(s Sample) float64 { return float64(s.Records) })},
		{name: "refs", color: lineColors[3], dash: "5,3", points: col(func(s Sample) float64 { return float64(s.Refs) })},
	}))
	rate := make([]float64, len(r.Samples))
	failed := make([]float64, len(r.Samples))
	for i, s := range r.Samples {
		failed[i] = float64(s.RPCsFailed)
		if i > 0 {
			if dt := xs[i] - xs[i-1]; dt > 0 {
				rate[i] = math.Round(math.Max(0, float64(s.RPCsOK-r.Samples[i-1].RPCsOK)/dt))
			}
		}
	}
	out = append(out, r.chart("RPCs: successful per second, failed after retries (total)", xs, []series{
		{name: "ok/s", color: lineColors[2], points: rate},
		{name: "failed", color: lineColors[1], points: failed},
	}))
	return out
}

// Chart geometry.
const (
	chartW, plotH             = 960, 150
	padL, padR, padT, padB    = 56, 16, 30, 26
	plotW                     = chartW - padL - padR
	minLabelBand              = 44.0 // narrowest band that gets a label, in px
	legendRow, legendItem     = 16, 176
	chartFont                 = `font-family="system-ui,sans-serif"`
	gridColor, axisColor      = "#e4e4e4", "#888"
	labelColor, labelDimColor = "#333", "#666"
)

// chart renders one time-series plot as SVG, with the phases as bands.
func (r *Result) chart(title string, xs []float64, ss []series) template.HTML {
	xmax := xs[len(xs)-1]
	if xmax <= 0 {
		xmax = 1
	}
	ymax := 1.0
	for _, s := range ss {
		for _, v := range s.points {
			ymax = math.Max(ymax, v)
		}
	}
	ystep := math.Max(1, niceStep(ymax/4)) // every plotted value is a count
	ytop := math.Ceil(ymax/ystep) * ystep
	x := func(v float64) float64 { return padL + v/xmax*plotW }
	y := func(v float64) float64 { return padT + plotH - v/ytop*plotH }

	perRow := plotW / legendItem
	chartH := padT + plotH + padB + (len(ss)+perRow-1)/perRow*legendRow + 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="14" font-size="13" font-weight="600" fill="%s" %s>%s</text>`, padL, labelColor, chartFont, html.EscapeString(title))
	// Fault bands, labelled when wide enough; alternate rows keep labels apart.
	for i, p := range r.Phases {
		x0, x1 := x(time.Duration(p.Start).Seconds()), x(time.Duration(p.End).Seconds())
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s</title></rect>`,
			x0, padT, math.Max(x1-x0, 0.5), plotH, faultColor(p.Fault), html.EscapeString(string(p.Fault)), window(p.Start, p.End))
		if x1-x0 >= minLabelBand {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9.5" fill="%s" %s>%s</text>`, x0+2, padT+10+(i%2)*11, labelDimColor, chartFont, html.EscapeString(string(p.Fault)))
		}
	}
	// Grid and axes.
	for v := 0.0; v <= ytop+ystep/2; v += ystep {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>`, padL, padL+plotW, y(v), y(v), gridColor)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="%s" %s>%s</text>`, padL-5, y(v)+3.5, labelDimColor, chartFont, formatNum(v))
	}
	xstep := niceStep(xmax / 8)
	for v := 0.0; v <= xmax+xstep/100; v += xstep {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s"/>`, x(v), x(v), padT+plotH, padT+plotH+4, axisColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="%s" %s>%s</text>`, x(v), padT+plotH+16, labelDimColor, chartFont, formatSeconds(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="%s"/>`, padL, padT, plotW, plotH, axisColor)
	// Lines, as steps: a sample holds until the next. Each line is shifted
	// by a pixel or so, so that lines on the same value stay visible.
	for i, s := range ss {
		px, py := reduce(xs, s.points)
		shift := (float64(i) - float64(len(ss)-1)/2) * 1.3
		y := func(v float64) float64 { return y(v) + shift }
		var pts strings.Builder
		for j := range px {
			if j > 0 {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x(px[j]), y(py[j-1]))
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(px[j]), y(py[j]))
		}
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, s.dash)
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.6"%s/>`, strings.TrimSpace(pts.String()), s.color, dash)
		lx := padL + (i%perRow)*legendItem
		ly := padT + plotH + padB + (i/perRow)*legendRow + 6
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`, lx, lx+20, ly, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10.5" fill="%s" %s>%s (max %s)</text>`, lx+24, ly+4, labelColor, chartFont, html.EscapeString(s.name), formatNum(slices.Max(s.points)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped text only
}

// faultLegend renders the band colours, for runs whose bands are too
// narrow to label.
func (r *Result) faultLegend() template.HTML {
	var b strings.Builder
	for _, f := range r.Faults {
		fmt.Fprintf(&b, `<span class="chip"><span class="sw" style="background:%s"></span>%s</span> `, faultColor(f), html.EscapeString(string(f)))
	}
	return template.HTML(b.String())
}

// reduce keeps at most maxPoints points, each the maximum of its bucket.
func reduce(xs, ys []float64) ([]float64, []float64) {
	if len(xs) <= maxPoints {
		return xs, ys
	}
	size := (len(xs) + maxPoints - 1) / maxPoints
	var ox, oy []float64
	for i := 0; i < len(xs); i += size {
		j := min(i+size, len(xs))
		ox = append(ox, xs[i])
		oy = append(oy, slices.Max(ys[i:j]))
	}
	return ox, oy
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return math.Max(m*p, 1e-9)
		}
	}
	return 10 * p
}

func formatNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatSeconds(v float64) string {
	switch {
	case v >= 3600:
		return fmt.Sprintf("%.4gh", v/3600)
	case v >= 120:
		return fmt.Sprintf("%.4gm", v/60)
	default:
		return fmt.Sprintf("%.4gs", v)
	}
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur": func(d jsontime.Duration) string { return time.Duration(d).Round(time.Millisecond).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — {{.Status}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1000px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; font-size: 13px; }
.banner { padding: 12px 16px; border-radius: 6px; margin: 16px 0; font-weight: 600; }
.banner.PASS { background: #e3f6e5; border: 1px solid #7cc68a; color: #1d5e2a; }
.banner.FAIL { background: #fde4e4; border: 1px solid #e08a8a; color: #8a1f1f; }
table { border-collapse: collapse; width: 100%; font-size: 13px; background: #fff; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { color: #1d7a33; font-weight: 600; }
.fail { color: #b42323; font-weight: 700; }
.info { color: #666; }
.hi { color: #b42323; font-weight: 600; }
.detail { white-space: pre-wrap; word-break: break-word; }
figure { margin: 10px 0; background: #fff; border: 1px solid #e6e6e6; border-radius: 4px; padding: 6px; }
svg { width: 100%; height: auto; display: block; }
.chip { display: inline-block; font-size: 12px; margin: 2px 8px 2px 0; }
.sw { display: inline-block; width: 12px; height: 12px; border: 1px solid #ccc; vertical-align: -2px; margin-right: 4px; }
code { background: #f2f2f2; padding: 1px 4px; border-radius: 3px; }
ul { font-size: 13px; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<div class="sub">started {{.Generated}} · timeline {{dur .R.Duration}} · elapsed {{dur .R.Elapsed}} · {{len .R.Faults}} fault(s){{if .R.Compare}} · compared with <code>{{.R.Compare}}</code>{{end}}</div>
<div class="banner {{.Status}}">{{.R.Verdict}}</div>

<h2>Verdict</h2>
<table>
<tr><th>check</th><th>result</th><th>detail</th></tr>
{{range .R.Checks}}<tr><td>{{.Name}}</td><td>{{if .Info}}<span class="info">info</span>{{else if .Pass}}<span class="pass">pass</span>{{else}}<span class="fail">FAIL</span>{{end}}</td><td class="detail">{{.Detail}}</td></tr>
{{end}}</table>

<h2>Over time</h2>
<div>{{.Legend}}</div>
{{range .Charts}}<figure>{{.}}</figure>
{{end}}

<h2>Faults: maximum sockets per backend</h2>
<table>
<tr><th>fault</th><th>window</th><th><code>{{.R.Policy}}</code></th>{{if .R.Compare}}<th><code>{{.R.Compare}}</code></th>{{end}}<th>evidence</th></tr>
{{$cmp := .R.Compare}}{{range .Phases}}<tr><td><span class="sw" style="background:{{.Color}}"></span>{{.Fault}}</td><td class="num">{{.Window}}</td><td class="num{{if .MaxOver1}} hi{{end}}">{{.Max}}</td>{{if $cmp}}<td class="num{{if .CmpOver}} hi{{end}}">{{.CompareMax}}</td>{{end}}<td>{{if .Error}}<span class="fail">{{.Error}}</span> {{end}}{{.Evidence}}</td></tr>
{{end}}</table>
<p class="sub">Counts are real sockets from /proc, attributed to the channel that dialed them, sampled every few hundred milliseconds. More than one socket to a backend is expected while a GOAWAY or a removal drains.</p>

<h2>Removed backends</h2>
<p class="sub">After a resolver update removes a backend, the channel's sockets to it must reach 0 within {{.Bound}} while the channel stays open. {{.Removals}}</p>
{{if .Leaks}}<table>
<tr><th>backend</th><th>removed at</th><th>by fault</th><th>sockets</th><th>evidence</th></tr>
{{range .Leaks}}<tr><td class="fail">{{.Backend}} {{.Addr}}</td><td class="num">{{dur .RemovedAt}}</td><td>{{.Fault}}</td><td class="num">{{.Sockets}} after {{dur .After}}</td><td class="detail">{{.Evidence}}</td></tr>
{{end}}</table>{{end}}

<h2>Growth: least-squares slopes</h2>
<p class="sub">Each sampled series after a {{dur .R.WarmUp}} warm-up (judged on runs with at least 5 minutes of samples after it), and each owner's fewest descriptors in each repeat of a phase (judged from 3 repeats). A leak is a slope clearly above zero.</p>
<table>
<tr><th>series</th><th>points</th><th>span</th><th>slope per minute</th><th>rise</th><th>limit per minute</th><th>verdict</th></tr>
{{range .R.Slopes}}<tr><td>{{.Series}}</td><td class="num">{{.Points}}</td><td class="num">{{dur .Span}}</td><td class="num">{{printf "%+.3g" .PerMinute}} {{.Unit}}</td><td class="num">{{printf "%+.3g" .Rise}}</td><td class="num">{{printf "%.3g" .Limit}}</td><td>{{if .Climbing}}<span class="fail">climbing</span>{{else if .Judged}}<span class="pass">flat</span>{{else}}<span class="info">not judged</span>{{end}}</td></tr>
{{end}}</table>

<h2>RPCs</h2>
<table>
<tr><th>channel</th><th>ok</th><th>failed after retries</th><th>retries</th><th>streams</th></tr>
<tr><td><code>{{.R.Policy}}</code></td><td class="num">{{.R.RPCs.OK}}</td><td class="num">{{.R.RPCs.Failed}}</td><td class="num">{{.R.RPCs.Retries}}</td><td class="num">{{.R.RPCs.Streams}}</td></tr>
{{with .R.CompareRPCs}}<tr><td><code>{{$cmp}}</code></td><td class="num">{{.OK}}</td><td class="num">{{.Failed}}</td><td class="num">{{.Retries}}</td><td class="num">{{.Streams}}</td></tr>{{end}}
</table>
{{if .R.Failures}}<ul>{{range .R.Failures}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}

<h2>Backends</h2>
<table>
<tr><th>name</th><th>address</th><th>role</th><th>connections accepted</th><th>RPCs served</th></tr>
{{range .R.Backends}}<tr><td>{{.Name}}</td><td class="num">{{.Addr}}</td><td>{{.Role}}</td><td class="num">{{.Accepted}}</td><td class="num">{{.RPCs}}</td></tr>
{{end}}</table>
<p class="sub">Generated by <code>leakproof soak</code>. Everything runs on 127.0.0.1; nothing on this page loads from the network.</p>
</main>
</body>
</html>
`))
