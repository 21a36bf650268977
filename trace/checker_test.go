package trace

import (
	"fmt"
	"slices"
	"testing"
)

// TestCheckerAgreesWithCheck feeds a trace with every kind of
// problem to the incremental checker, one manager's events at a time, and
// compares its report with Check over the whole trace.
func TestCheckerAgreesWithCheck(t *testing.T) {
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

	c := NewChecker()
	for _, e := range all {
		c.Add(e)
	}
	got, want := c.Report(), Check(all)
	if got.Events != want.Events || got.Subchannels != want.Subchannels || got.Destroyed != want.Destroyed || got.Live != want.Live {
		t.Errorf("incremental: %d events, %d subchannels, %d destroyed, %d live; Check: %d, %d, %d, %d",
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

// TestCheckerStaysBounded feeds the checker the lives of many
// subchannels of many managers that open and close, as a long soak does,
// and checks that what it keeps does not grow with the trace; a subchannel
// still held when its manager closes is still reported.
func TestCheckerStaysBounded(t *testing.T) {
	var seq uint64
	ev := func(m, sc uint64, kind Kind, before, after int) Event {
		seq++
		return Event{Seq: seq, Manager: m, Subchannel: sc, Key: "127.0.0.1:1", Kind: kind, RefsBefore: before, RefsAfter: after, Holder: "h"}
	}
	c := NewChecker()
	const managers, perManager = 2000, 20
	sc := uint64(0)
	for m := uint64(1); m <= managers; m++ {
		c.Add(ev(m, 0, KindManagerOpen, 0, 0))
		for range perManager {
			sc++
			for _, e := range []Event{ev(m, sc, KindCreate, 0, 0), ev(m, sc, KindRef, 0, 1), ev(m, sc, KindUnref, 1, 0), ev(m, sc, KindShutdown, 0, 0)} {
				c.Add(e)
			}
		}
		c.Add(ev(m, 0, KindManagerClose, 0, 0))
		for s := sc - perManager + 1; s <= sc; s++ {
			c.Add(ev(m, s, KindDestroy, 0, 0))
		}
	}
	if n := len(c.destroyed); n > destroyedWindow {
		t.Errorf("%d destroyed subchannels remembered, want at most %d", n, destroyedWindow)
	}
	if len(c.closed) != 0 || len(c.perMgr) != 0 || len(c.open) != 0 {
		t.Errorf("kept %d closed managers, %d manager counts, %d open subchannels after every subchannel was destroyed", len(c.closed), len(c.perMgr), len(c.open))
	}
	// A recent destroy is still remembered: an event after it is caught.
	c.Add(ev(managers, sc, KindConnect, 0, 0))
	// A subchannel held when its manager closes is a leak.
	m := uint64(managers + 1)
	c.Add(ev(m, 0, KindManagerOpen, 0, 0))
	c.Add(ev(m, sc+1, KindCreate, 0, 0))
	c.Add(ev(m, sc+1, KindRef, 0, 1))
	c.Add(ev(m, 0, KindManagerClose, 0, 0))
	rep := c.Report()
	var kinds []ProblemKind
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if !slices.Contains(kinds, ProblemInvalid) || !slices.Contains(kinds, ProblemLeak) || len(kinds) != 2 {
		t.Errorf("problems %v, want the event after destroy and the closed manager's leak", rep.Problems)
	}
	if rep.Destroyed != managers*perManager {
		t.Errorf("%d destroyed, want %d", rep.Destroyed, managers*perManager)
	}
}

// The trace checker keeps nothing for a manager closed with no subchannel
// open (a soak closes tens of thousands of channels).
func TestCheckerForgetsEmptyClosedManagers(t *testing.T) {
	c := NewChecker()
	c.Add(Event{Seq: 1, Manager: 7, Kind: KindManagerOpen})
	c.Add(Event{Seq: 2, Manager: 7, Kind: KindManagerClose})
	c.mu.Lock()
	n := len(c.closed)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d closed managers kept, want 0", n)
	}
}
