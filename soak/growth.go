package soak

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// The soak judges growth one way everywhere: a least-squares line through a
// series of (time, value) points, and a growthRule that says when its slope
// is a climb rather than noise. Two kinds of series go through it:
//
//   - every sampled series after warm-up (goroutines, descriptors and each
//     owner's share of them, heap in use, live manager records), over the
//     whole run, judged once the run is long enough (runGrowth);
//   - each owner's descriptors across the repeats of one phase: the floor
//     (fewest) of the samples of each repeat, so that a leak that raises
//     the floor shows while the peaks of a busy fault do not (phaseGrowth).
//     A frozen backend that kept what it held would climb here, phase after
//     phase, even if everything is released at shutdown.

// A point is one value of a series at an offset from the start of the run.
type point struct {
	at time.Duration
	v  float64
}

// A growthRule says when a series climbs clearly.
type growthRule struct {
	// minPoints and minSpan: a series with fewer points, or spanning less
	// time, is reported but not judged.
	minPoints int
	minSpan   time.Duration
	// maxPerMinute is the largest slope that is not a climb.
	maxPerMinute float64
	// minRise is the smallest rise over the series' span (slope × span)
	// that counts: below it the climb is within the noise of a count.
	minRise float64
}

// A Slope is the least-squares trend of one series over a run: a leak is a
// slope clearly above zero.
type Slope struct {
	// Series names what was measured ("fds", "fds: backend frozen",
	// "heap in use", "fds: backend frozen in phase freeze").
	Series string `json:"series"`
	// Unit of the values ("fds", "goroutines", "bytes", "records").
	Unit string `json:"unit"`
	// Points and Span are the samples fitted and the time they span.
	Points int               `json:"points"`
	Span   jsontime.Duration `json:"span"`
	// First and Last are the fitted line's values at the first and last
	// point; PerMinute its slope.
	First     float64 `json:"first"`
	Last      float64 `json:"last"`
	PerMinute float64 `json:"per_minute"`
	// Judged is false when the series was too short to judge; Limit is then
	// still the slope that would fail.
	Judged bool    `json:"judged"`
	Limit  float64 `json:"limit_per_minute"`
	// Climbing is true when the slope is above Limit and the rise above the
	// noise of the series: the check fails.
	Climbing bool `json:"climbing"`
}

// Rise is the growth of the fitted line over the span.
func (s Slope) Rise() float64 { return s.Last - s.First }

// String formats the slope per minute over its span and its end points.
func (s Slope) String() string {
	return fmt.Sprintf("%s: %+.3g %s/min over %v (%d points, %.4g → %.4g)", s.Series, s.PerMinute, s.Unit,
		time.Duration(s.Span).Round(time.Second), s.Points, s.First, s.Last)
}

// fit returns the least-squares slope (per minute) and intercept of pts, in
// minutes from the first point.
func fit(pts []point) (perMinute, intercept float64) {
	n := float64(len(pts))
	if len(pts) < 2 {
		if len(pts) == 1 {
			return 0, pts[0].v
		}
		return 0, 0
	}
	t0 := pts[0].at
	var sx, sy, sxx, sxy float64
	for _, p := range pts {
		x := (p.at - t0).Minutes()
		sx += x
		sy += p.v
		sxx += x * x
		sxy += x * p.v
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, sy / n
	}
	perMinute = (n*sxy - sx*sy) / den
	return perMinute, (sy - perMinute*sx) / n
}

// judge fits pts and applies the rule.
func (g growthRule) judge(series, unit string, pts []point) Slope {
	s := Slope{Series: series, Unit: unit, Points: len(pts), Limit: g.maxPerMinute}
	if len(pts) == 0 {
		return s
	}
	span := pts[len(pts)-1].at - pts[0].at
	s.Span = jsontime.Duration(span)
	slope, icpt := fit(pts)
	s.PerMinute = slope
	s.First, s.Last = icpt, icpt+slope*span.Minutes()
	if math.IsNaN(slope) {
		return s
	}
	s.Judged = len(pts) >= g.minPoints && span >= g.minSpan
	s.Climbing = s.Judged && slope > g.maxPerMinute && s.Rise() >= g.minRise
	return s
}

// Run-level growth: every sampled series after warm-up, judged only when
// the run is long enough for a slope to stand out of the phases' ups and
// downs. The limits come from measured runs (RELIABILITY.md): clean runs
// of an hour with every fault stay 10 to 1,000 times inside them, while the
// frozen backend that kept what it held grew the process by ~5 descriptors
// a minute.
const (
	// longRun is the shortest span of samples after warm-up that is
	// judged.
	longRun = 5 * time.Minute
	// maxWarmUp bounds the start of a run left out of the fit.
	maxWarmUp = 5 * time.Minute
	mib       = 1 << 20
)

var (
	runCountRule = growthRule{minPoints: 100, minSpan: longRun, maxPerMinute: 0.5, minRise: 5}
	runGoroutine = growthRule{minPoints: 100, minSpan: longRun, maxPerMinute: 1, minRise: 10}
	runHeapRule  = growthRule{minPoints: 100, minSpan: longRun, maxPerMinute: 1 * mib, minRise: 8 * mib}
)

// warmUp is the start of a run of duration d left out of the run-level
// slopes: a tenth of the run, at least the quiet start, at most maxWarmUp.
func warmUp(d time.Duration) time.Duration {
	return min(max(d/10, quiet), maxWarmUp)
}

// WarmUp returns the start of a run whose timeline lasts d that the
// run-level slopes leave out (Result.WarmUp after the run): a tenth of the
// run, at most 5 minutes.
func WarmUp(d time.Duration) time.Duration { return warmUp(d) }

// runSlopes fits every sampled series after warm-up and up to end, the
// end of the timeline (the samples of the shutdown go back to the baseline
// and are judged by the checks at the end). backends names the backends in
// report order.
func runSlopes(samples []Sample, warm, end time.Duration, backends []string) []Slope {
	var after []Sample
	for _, s := range samples {
		if at := time.Duration(s.At); at >= warm && at <= end {
			after = append(after, s)
		}
	}
	series := func(f func(Sample) float64) []point {
		pts := make([]point, len(after))
		for i, s := range after {
			pts[i] = point{time.Duration(s.At), f(s)}
		}
		return pts
	}
	out := []Slope{
		runGoroutine.judge("goroutines", "goroutines", series(func(s Sample) float64 { return float64(s.Goroutines) })),
		runCountRule.judge("fds", "fds", series(func(s Sample) float64 { return float64(s.FDs) })),
		runCountRule.judge("fds: "+ownerClient, "fds", series(func(s Sample) float64 { return float64(s.ClientFDs) })),
	}
	for _, name := range backends {
		out = append(out, runCountRule.judge("fds: "+backendOwner(name), "fds", series(func(s Sample) float64 { return float64(s.BackendFDs[name]) })))
	}
	out = append(out,
		runCountRule.judge("fds: "+ownerOther, "fds", series(func(s Sample) float64 { return float64(s.OtherFDs) })),
		runHeapRule.judge("heap in use", "bytes", series(func(s Sample) float64 { return float64(s.HeapInUse) })),
		runHeapRule.judge("heap live", "bytes", series(func(s Sample) float64 { return float64(s.HeapLive) })),
		runCountRule.judge("live manager records", "records", series(func(s Sample) float64 { return float64(s.Records) })),
	)
	return out
}

// growthCheck is the verdict's line on every slope.
func growthCheck(slopes []Slope, warm time.Duration) Check {
	c := Check{Name: CheckGrowth, Pass: true}
	var climbing []string
	judged, phase := 0, 0
	for _, s := range slopes {
		if s.Judged {
			judged++
			if strings.Contains(s.Series, " in phase ") {
				phase++
			}
		}
		if s.Climbing {
			c.Pass = false
			climbing = append(climbing, s.String())
		}
	}
	if !c.Pass {
		c.Detail = "climbing: " + strings.Join(climbing, "; ")
		return c
	}
	run := judged - phase
	switch {
	case run == 0 && phase == 0:
		c.Detail = fmt.Sprintf("not judged: too short (run-level slopes need %v of samples after a %v warm-up; phase repeats need %d repeats)",
			longRun, warm.Round(time.Second), phaseRepeats.minPoints)
	default:
		c.Detail = fmt.Sprintf("no series climbs: %d run-level slope(s) after a %v warm-up, %d owner×phase repeat series judged", run, warm.Round(time.Second), phase)
	}
	return c
}
