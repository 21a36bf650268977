package subconn

import (
	"fmt"
	"slices"
	"testing"
)

// TestTraceCheckerAgreesWithCheckTrace feeds a trace with every kind of
// problem to the incremental checker, one manager's events at a time, and
// compares its report with CheckTrace over the whole trace.
func TestTraceCheckerAgreesWithCheckTrace(t *testing.T) {
	var seq uint64
	ev := func(m, sc uint64, kind Kind, before, after int, holder string) Event {
		seq++
		return Event{Seq: seq, Manager: m, Subchannel: sc, Key: fmt.Sprintf("127.0.0.1:%d", 1000+sc), Kind: kind, RefsBefore: before, RefsAfter: after, Holder: holder}
	}
	life := func(m, sc uint64) []Event {
		return []Event{
			ev(m, sc, KindCreate, 0, 0, ""),
			ev(m, sc, KindRef, 0, 1, "h"),
			ev(m, sc, KindUnref, 1, 0, "h"),
			ev(m, sc, KindShutdown, 0, 0, ""),
			ev(m, sc, KindDestroy, 0, 0, ""),
		}
	}
	var all []Event
	all = append(all, ev(1, 0, KindManagerOpen, 0, 0, ""))
	all = append(all, life(1, 1)...)
	// Released but never shut down.
	all = append(all, ev(1, 2, KindCreate, 0, 0, ""), ev(1, 2, KindRef, 0, 1, "h"), ev(1, 2, KindUnref, 1, 0, "h"))
	// An event after destroy.
	all = append(all, life(1, 3)...)
	all = append(all, ev(1, 3, KindConnect, 0, 0, ""), ev(1, 3, KindConnect, 0, 0, ""))
	// An unref without a reference, then destroyed.
	all = append(all, ev(1, 4, KindCreate, 0, 0, ""), ev(1, 4, KindUnref, 0, 0, "x"), ev(1, 4, KindShutdown, 0, 0, ""), ev(1, 4, KindDestroy, 0, 0, ""))
	// Still held when its manager closes, and held by an open manager.
	all = append(all, ev(1, 5, KindCreate, 0, 0, ""), ev(1, 5, KindRef, 0, 1, "h"), ev(1, 0, KindManagerClose, 0, 0, ""))
	all = append(all, ev(2, 0, KindManagerOpen, 0, 0, ""), ev(2, 6, KindCreate, 0, 0, ""), ev(2, 6, KindRef, 0, 1, "h"))
	all = append(all, life(2, 7)...)

	c := NewTraceChecker()
	for _, e := range all {
		c.Add(e)
	}
	got, want := c.Report(), CheckTrace(all)
	if got.Events != want.Events || got.Subchannels != want.Subchannels || got.Destroyed != want.Destroyed || got.Live != want.Live {
		t.Errorf("incremental: %d events, %d subchannels, %d destroyed, %d live; CheckTrace: %d, %d, %d, %d",
			got.Events, got.Subchannels, got.Destroyed, got.Live, want.Events, want.Subchannels, want.Destroyed, want.Live)
	}
	key := func(ps []Problem) []string {
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
