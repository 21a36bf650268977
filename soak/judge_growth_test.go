package soak

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// pts makes points at the given minutes from start.
func pts(start time.Duration, minutes []float64, vs []float64) []point {
	out := make([]point, len(vs))
	for i, v := range vs {
		out[i] = point{start + time.Duration(minutes[i]*float64(time.Minute)), v}
	}
	return out
}

// TestJudgeFitMatchesTheClosedForm: the slope and intercept are the
// least-squares line's, computed here from the means, whatever the time the
// series starts at; short and degenerate series give a flat line.
func TestJudgeFitMatchesTheClosedForm(t *testing.T) {
	xs := []float64{0, 0.5, 1.5, 3}
	ys := []float64{2, 7, 1, 11}
	var mx, my float64
	for i := range xs {
		mx += xs[i] / 4
		my += ys[i] / 4
	}
	var cov, vx float64
	for i := range xs {
		cov += (xs[i] - mx) * (ys[i] - my)
		vx += (xs[i] - mx) * (xs[i] - mx)
	}
	wantSlope := cov / vx
	wantIcpt := my - wantSlope*mx
	slope, icpt := fit(pts(90*time.Second, xs, ys))
	if math.Abs(slope-wantSlope) > 1e-9 || math.Abs(icpt-wantIcpt) > 1e-9 {
		t.Errorf("fit = %v, %v; want %v, %v", slope, icpt, wantSlope, wantIcpt)
	}

	for _, tc := range []struct {
		name        string
		pts         []point
		slope, icpt float64
	}{
		{"none", nil, 0, 0},
		{"one", pts(time.Minute, []float64{0}, []float64{7}), 0, 7},
		{"two", pts(time.Minute, []float64{0, 2}, []float64{1, 5}), 2, 1},
		{"one instant", pts(time.Minute, []float64{1, 1, 1}, []float64{3, 4, 8}), 0, 5},
	} {
		if s, i := fit(tc.pts); s != tc.slope || i != tc.icpt {
			t.Errorf("%s: fit = %v, %v; want %v, %v", tc.name, s, i, tc.slope, tc.icpt)
		}
	}
}

// TestJudgeGrowthRuleAtItsEdges: a series is judged from minPoints points
// and minSpan on, and climbs only with a slope above the limit and a rise
// of at least minRise; an empty or NaN series is never judged.
func TestJudgeGrowthRuleAtItsEdges(t *testing.T) {
	// 0.5 a minute exactly, rising 1 over 2 minutes, from 30s into the run.
	line := pts(30*time.Second, []float64{0, 1, 2}, []float64{4, 4.5, 5})
	rule := growthRule{minPoints: 3, minSpan: 2 * time.Minute, maxPerMinute: 0.25, minRise: 1}
	s := rule.judge("fds: client", "fds", line)
	want := Slope{Series: "fds: client", Unit: "fds", Points: 3, Span: jsontime.Duration(2 * time.Minute),
		First: 4, Last: 5, PerMinute: 0.5, Judged: true, Limit: 0.25, Climbing: true}
	if s != want {
		t.Fatalf("judge = %+v\nwant     %+v", s, want)
	}
	if s.Rise() != 1 {
		t.Errorf("Rise = %v, want 1", s.Rise())
	}
	for _, tc := range []struct {
		name             string
		rule             growthRule
		judged, climbing bool
	}{
		{"one point short", growthRule{minPoints: 4, minSpan: 2 * time.Minute, maxPerMinute: 0.25, minRise: 1}, false, false},
		{"a second short", growthRule{minPoints: 3, minSpan: 2*time.Minute + time.Second, maxPerMinute: 0.25, minRise: 1}, false, false},
		{"slope at the limit", growthRule{minPoints: 3, minSpan: 2 * time.Minute, maxPerMinute: 0.5, minRise: 1}, true, false},
		{"rise short of minRise", growthRule{minPoints: 3, minSpan: 2 * time.Minute, maxPerMinute: 0.25, minRise: 1.01}, true, false},
	} {
		s := tc.rule.judge("x", "fds", line)
		if s.Judged != tc.judged || s.Climbing != tc.climbing {
			t.Errorf("%s: judged %v climbing %v, want %v %v", tc.name, s.Judged, s.Climbing, tc.judged, tc.climbing)
		}
	}
	// A falling line is not a climb, whatever the rule.
	fall := pts(0, []float64{0, 1, 2}, []float64{5, 4.5, 4})
	if s := (growthRule{minRise: -5}).judge("x", "fds", fall); !s.Judged || s.Climbing || s.PerMinute != -0.5 || s.Rise() != -1 {
		t.Errorf("falling line: %+v", s)
	}

	if s := rule.judge("empty", "fds", nil); s != (Slope{Series: "empty", Unit: "fds", Limit: 0.25}) {
		t.Errorf("empty series: %+v", s)
	}
	nan := pts(0, []float64{0, 1, 2, 3}, []float64{1, math.NaN(), 3, 4})
	if s := (growthRule{maxPerMinute: -1}).judge("nan", "fds", nan); s.Judged || s.Climbing || s.Points != 4 || time.Duration(s.Span) != 3*time.Minute {
		t.Errorf("NaN series: %+v", s)
	}
}

// TestJudgeWarmUpIsATenthWithinBounds: a tenth of the run, at least the
// quiet start, at most five minutes.
func TestJudgeWarmUpIsATenthWithinBounds(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		10 * time.Second: quiet,
		20 * time.Minute: 2 * time.Minute,
		2 * time.Hour:    maxWarmUp,
	} {
		if got := WarmUp(d); got != want {
			t.Errorf("WarmUp(%v) = %v, want %v", d, got, want)
		}
	}
}

// TestJudgeRunSlopesFitEverySeriesInTheWindow: each series is fitted over
// the samples from the warm-up to the end, both included, and reads its own
// field of the sample.
func TestJudgeRunSlopesFitEverySeriesInTheWindow(t *testing.T) {
	warm, end := 10*time.Second, 40*time.Second
	var samples []Sample
	for at := time.Duration(0); at <= 50*time.Second; at += 5 * time.Second {
		k := int(at / (5 * time.Second))
		samples = append(samples, Sample{
			At:         jsontime.Duration(at),
			Goroutines: 100 + 1*k,
			FDs:        100 + 2*k,
			ClientFDs:  100 + 3*k,
			BackendFDs: map[string]int{"b0": 100 + 4*k, "frozen": 100 + 5*k},
			OtherFDs:   100 + 6*k,
			HeapInUse:  uint64(100 + 7*k),
			HeapLive:   uint64(100 + 8*k),
			Records:    100 + 9*k,
		})
	}
	slopes := runSlopes(samples, warm, end, []string{"b0", "frozen"})
	want := []struct {
		series string
		unit   string
		per5s  float64
	}{
		{"goroutines", "goroutines", 1},
		{"fds", "fds", 2},
		{"fds: client", "fds", 3},
		{"fds: backend b0", "fds", 4},
		{"fds: backend frozen", "fds", 5},
		{"fds: other", "fds", 6},
		{"heap in use", "bytes", 7},
		{"heap live", "bytes", 8},
		{"live manager records", "records", 9},
	}
	if len(slopes) != len(want) {
		t.Fatalf("%d slopes, want %d: %v", len(slopes), len(want), slopes)
	}
	for i, w := range want {
		s := slopes[i]
		// Samples at 10s..40s: k = 2..8, seven points over 30s.
		if s.Series != w.series || s.Unit != w.unit || s.Points != 7 || time.Duration(s.Span) != 30*time.Second {
			t.Errorf("slope %d = %q %q %d points over %v; want %q %q 7 points over 30s", i, s.Series, s.Unit, s.Points, time.Duration(s.Span), w.series, w.unit)
		}
		if math.Abs(s.PerMinute-12*w.per5s) > 1e-6 || math.Abs(s.First-(100+2*w.per5s)) > 1e-6 {
			t.Errorf("%s: %+.3f/min from %.3f, want %+.3f/min from %.3f", s.Series, s.PerMinute, s.First, 12*w.per5s, 100+2*w.per5s)
		}
	}
}

// TestJudgeGrowthCheckCountsWhatItJudged: the check fails naming every
// climbing series, and otherwise says how many run-level and phase series
// it judged, or that the run was too short for either.
func TestJudgeGrowthCheckCountsWhatItJudged(t *testing.T) {
	const warm = 30 * time.Second
	run := Slope{Series: "fds", Judged: true}
	phase := Slope{Series: "fds: client in phase goaway", Judged: true}
	unjudged := Slope{Series: "heap in use"}
	for _, tc := range []struct {
		name   string
		slopes []Slope
		detail string
	}{
		{"nothing judged", []Slope{unjudged, {Series: "x in phase y"}}, "not judged: too short (run-level slopes need 5m0s of samples after a 30s warm-up; phase repeats need 3 repeats)"},
		{"phases only", []Slope{unjudged, phase, phase}, "no series climbs: 0 run-level slope(s) after a 30s warm-up, 2 owner×phase repeat series judged"},
		{"run only", []Slope{run, unjudged, run, run}, "no series climbs: 3 run-level slope(s) after a 30s warm-up, 0 owner×phase repeat series judged"},
		{"both", []Slope{run, phase, run}, "no series climbs: 2 run-level slope(s) after a 30s warm-up, 1 owner×phase repeat series judged"},
	} {
		c := growthCheck(tc.slopes, warm)
		if c.Name != CheckGrowth || !c.Pass || c.Detail != tc.detail {
			t.Errorf("%s: %q pass %v: %q\nwant pass: %q", tc.name, c.Name, c.Pass, c.Detail, tc.detail)
		}
	}
	up := Slope{Series: "fds: backend frozen", Unit: "fds", Points: 9, Span: jsontime.Duration(time.Minute), First: 1, Last: 3, PerMinute: 2, Judged: true, Climbing: true}
	up2 := Slope{Series: "heap live", Unit: "bytes", Points: 4, Span: jsontime.Duration(2 * time.Minute), First: 10, Last: 30, PerMinute: 10, Judged: true, Climbing: true}
	c := growthCheck([]Slope{run, up, phase, up2}, warm)
	want := "climbing: fds: backend frozen: +2 fds/min over 1m0s (9 points, 1 → 3); heap live: +10 bytes/min over 2m0s (4 points, 10 → 30)"
	if c.Pass || c.Detail != want {
		t.Errorf("climbing: pass %v: %q\nwant fail: %q", c.Pass, c.Detail, want)
	}
	if !strings.HasPrefix(up.String(), "fds: backend frozen: +2") {
		t.Errorf("String = %q", up.String())
	}
}

// TestJudgeHeapRuleNeedsSlopeAndRise: the run's heap climbs only above
// 1 MiB a minute and by 8 MiB or more: 0.9 MiB a minute for 10 minutes
// (9 MiB) and 1.5 MiB a minute for 5 minutes (7.5 MiB) are not climbs,
// 1.5 MiB a minute for 6 minutes is.
func TestJudgeHeapRuleNeedsSlopeAndRise(t *testing.T) {
	heap := func(perMinute float64, d time.Duration) []point {
		var out []point
		for at := time.Duration(0); at <= d; at += 3 * time.Second {
			out = append(out, point{at, 20*mib + perMinute*at.Minutes()})
		}
		return out
	}
	for _, tc := range []struct {
		perMinute float64
		d         time.Duration
		climbing  bool
	}{
		{0.9 * mib, 10 * time.Minute, false},
		{1.5 * mib, 5 * time.Minute, false},
		{1.5 * mib, 6 * time.Minute, true},
	} {
		s := runHeapRule.judge("heap in use", "bytes", heap(tc.perMinute, tc.d))
		if !s.Judged || s.Climbing != tc.climbing {
			t.Errorf("%.1f MiB a minute for %v: judged %v climbing %v, want climbing %v", tc.perMinute/mib, tc.d, s.Judged, s.Climbing, tc.climbing)
		}
	}
}
