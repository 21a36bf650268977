package soak

import (
	"testing"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// TestKeptSamplesSpanTheWholeRun takes an hour of samples at the default
// interval and checks that the kept ones stay bounded, evenly spread from
// the start to the latest: a slope over the hour must see the whole hour,
// not its last quarter.
func TestKeptSamplesSpanTheWholeRun(t *testing.T) {
	r := &runner{}
	const d = time.Hour
	n := int(d / DefaultSampleInterval)
	for i := range n {
		r.keepLocked(Sample{At: jsontime.Duration(time.Duration(i) * DefaultSampleInterval)})
		if len(r.samples) > maxKept+1 {
			t.Fatalf("after %d samples %d are kept, want at most %d", i+1, len(r.samples), maxKept+1)
		}
	}
	last := time.Duration(n-1) * DefaultSampleInterval
	if got := time.Duration(r.samples[len(r.samples)-1].At); got != last {
		t.Errorf("latest kept sample at %v, want the latest taken, %v", got, last)
	}
	warm := warmUp(d)
	var after []time.Duration
	for _, s := range r.samples {
		if at := time.Duration(s.At); at >= warm {
			after = append(after, at)
		}
	}
	if span := after[len(after)-1] - after[0]; span < d-warm-time.Minute {
		t.Errorf("kept samples after the %v warm-up span %v, want about %v", warm, span, d-warm)
	}
	// Evenly spread: no gap between kept samples (but the latest) is more
	// than twice the smallest.
	minGap, maxGap := time.Duration(1<<62), time.Duration(0)
	for i := 1; i < len(r.samples)-1; i++ {
		g := time.Duration(r.samples[i].At - r.samples[i-1].At)
		minGap, maxGap = min(minGap, g), max(maxGap, g)
	}
	if maxGap > 2*minGap {
		t.Errorf("gaps between kept samples from %v to %v: not evenly spread", minGap, maxGap)
	}
	if len(after) < maxKept/4 {
		t.Errorf("only %d samples after warm-up", len(after))
	}
}

// TestBackendMayKeepClosedConnectionsForTheBound: a backend keeping more
// connections open than its clients hold fails the in-run check once that
// has lasted the removal bound, not before, and a break resets the count.
func TestBackendMayKeepClosedConnectionsForTheBound(t *testing.T) {
	r := &runner{cfg: Config{DrainTimeout: time.Second, RemovalSlack: time.Second, SampleInterval: 200 * time.Millisecond}, inRun: newInRun()}
	n := r.openStreak()
	if n != 11 {
		t.Fatalf("openStreak = %d, want 11 samples for a 2s bound at 200ms", n)
	}
	for i := 1; i < n; i++ {
		if r.inRun.failingFor("open b0", true, n) {
			t.Fatalf("failed after %d samples, within the bound", i)
		}
	}
	if !r.inRun.failingFor("open b0", true, n) {
		t.Fatalf("did not fail after %d samples, the bound", n)
	}
	r.inRun.failingFor("open b0", false, n)
	if r.inRun.failingFor("open b0", true, n) {
		t.Fatal("failed again at once after the condition broke")
	}
}

// TestKeptSamplesReuseTheirMaps: once the run has started, taking and
// keeping samples allocates nothing that outlives them. The samples a run
// keeps stay within maxKept, and their maps are made at the start and
// reused as samples are dropped, so that an hour's sampling does not grow
// the heap the run judges.
func TestKeptSamplesReuseTheirMaps(t *testing.T) {
	r := &runner{}
	names := []string{"b0", "b1", "b2", "b3", "frozen", "resetting", "tls"}
	counts := map[string]int{}
	for i, n := range names {
		counts[n] = i
	}
	r.preallocateSamples(names, true)
	i := 0
	take := func() {
		s := r.spareLocked()
		s.At = jsontime.Duration(time.Duration(i) * DefaultSampleInterval)
		s.Sockets = fillCounts(s.Sockets, counts)
		s.CompareSockets = fillCounts(s.CompareSockets, counts)
		s.BackendFDs = fillCounts(s.BackendFDs, counts)
		s.BackendConns = fillCounts(s.BackendConns, counts)
		r.keepLocked(s)
		i++
	}
	// From the first sample on: the maps and the slice of kept samples are
	// made at the start, not as the first 1,024 samples fill them.
	if allocs := testing.AllocsPerRun(4*maxKept, take); allocs != 0 {
		t.Errorf("%.2f allocations per sample kept, want 0: the kept samples' storage is not all made at the start, or not reused", allocs)
	}
	if len(r.samples) > maxKept+1 {
		t.Errorf("%d samples kept, want at most %d", len(r.samples), maxKept+1)
	}
	for _, s := range r.samples {
		if len(s.Sockets) != len(names) || s.BackendConns["tls"] != 6 {
			t.Fatalf("a kept sample at %v lost its counts: %v %v", time.Duration(s.At), s.Sockets, s.BackendConns)
		}
	}
}
