package soak

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/leakproof/leakproof/subconn"
)

// TestTraceCheckerAgreesWithCheckTrace feeds a trace with every kind of
// problem to the incremental checker, one manager's events at a time, and
// compares its report with subconn.CheckTrace over the whole trace.
func TestTraceCheckerAgreesWithCheckTrace(t *testing.T) {
	var seq uint64
	ev := func(m, sc uint64, kind subconn.Kind, before, after int, holder string) subconn.Event {
		seq++
		return subconn.Event{Seq: seq, Manager: m, Subchannel: sc, Key: fmt.Sprintf("127.0.0.1:%d", 1000+sc), Kind: kind, RefsBefore: before, RefsAfter: after, Holder: holder}
	}
	life := func(m, sc uint64) []subconn.Event {
		return []subconn.Event{
			ev(m, sc, subconn.KindCreate, 0, 0, ""),
			ev(m, sc, subconn.KindRef, 0, 1, "h"),
			ev(m, sc, subconn.KindUnref, 1, 0, "h"),
			ev(m, sc, subconn.KindShutdown, 0, 0, ""),
			ev(m, sc, subconn.KindDestroy, 0, 0, ""),
		}
	}
	var all []subconn.Event
	all = append(all, ev(1, 0, subconn.KindManagerOpen, 0, 0, ""))
	all = append(all, life(1, 1)...)
	// Released but never shut down.
	all = append(all, ev(1, 2, subconn.KindCreate, 0, 0, ""), ev(1, 2, subconn.KindRef, 0, 1, "h"), ev(1, 2, subconn.KindUnref, 1, 0, "h"))
	// An event after destroy.
	all = append(all, life(1, 3)...)
	all = append(all, ev(1, 3, subconn.KindConnect, 0, 0, ""), ev(1, 3, subconn.KindConnect, 0, 0, ""))
	// An unref without a reference, then destroyed.
	all = append(all, ev(1, 4, subconn.KindCreate, 0, 0, ""), ev(1, 4, subconn.KindUnref, 0, 0, "x"), ev(1, 4, subconn.KindShutdown, 0, 0, ""), ev(1, 4, subconn.KindDestroy, 0, 0, ""))
	// Still held when its manager closes, and held by an open manager.
	all = append(all, ev(1, 5, subconn.KindCreate, 0, 0, ""), ev(1, 5, subconn.KindRef, 0, 1, "h"), ev(1, 0, subconn.KindManagerClose, 0, 0, ""))
	all = append(all, ev(2, 0, subconn.KindManagerOpen, 0, 0, ""), ev(2, 6, subconn.KindCreate, 0, 0, ""), ev(2, 6, subconn.KindRef, 0, 1, "h"))
	all = append(all, life(2, 7)...)

	c := newTraceChecker()
	for _, e := range all {
		c.add(e)
	}
	got, want := c.report(), subconn.CheckTrace(all)
	if got.Events != want.Events || got.Subchannels != want.Subchannels || got.Destroyed != want.Destroyed || got.Live != want.Live {
		t.Errorf("incremental: %d events, %d subchannels, %d destroyed, %d live; CheckTrace: %d, %d, %d, %d",
			got.Events, got.Subchannels, got.Destroyed, got.Live, want.Events, want.Subchannels, want.Destroyed, want.Live)
	}
	key := func(ps []subconn.Problem) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.String())
		}
		slices.Sort(out)
		return out
	}
	if g, w := key(got.Problems), key(want.Problems); !slices.Equal(g, w) {
		t.Errorf("incremental problems:\n%q\nCheckTrace problems:\n%q", g, w)
	}
	if len(want.Problems) < 4 {
		t.Errorf("the fixture shows only %d problems: %v", len(want.Problems), want.Problems)
	}
	// Checked subchannels are dropped: only the undestroyed ones are kept.
	if len(c.open) != 3 {
		t.Errorf("%d subchannels' events kept, want the 3 never destroyed", len(c.open))
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		d      string
		n      int
		phase  string
		cycles int
	}{
		{"30s", 11, "2.545454545s", 1},
		{"15s", 11, "1.181818181s", 1},
		{"1h", 11, "2.973553719s", 110},
		{"4s", 2, "1s", 1},
	} {
		d, _ := time.ParseDuration(tc.d)
		phase, cycles := plan(d, tc.n)
		if phase.String() != tc.phase || cycles != tc.cycles {
			t.Errorf("plan(%s, %d) = %v, %d; want %s, %d", tc.d, tc.n, phase, cycles, tc.phase, tc.cycles)
		}
		if phase > maxPhase || phase < MinPhase {
			t.Errorf("plan(%s, %d): phase %v outside [%v, %v]", tc.d, tc.n, phase, MinPhase, maxPhase)
		}
	}
}
