package trace

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func ev(seq uint64, sc uint64, kind Kind, before, after int, holder string) Event {
	return Event{Seq: seq, Manager: 1, Target: "dns:///svc", Subchannel: sc, Key: "127.0.0.1:5000", Kind: kind, RefsBefore: before, RefsAfter: after, Holder: holder}
}

func TestCheckMissingDestroy(t *testing.T) {
	events := []Event{
		ev(1, 4, KindCreate, 0, 0, "a"),
		ev(2, 4, KindRef, 0, 1, "a"),
		ev(3, 4, KindSocketOpen, 1, 1, ""),
		ev(4, 4, KindUnref, 1, 0, "a"),
		ev(5, 4, KindShutdown, 0, 0, "a"),
	}
	events[2].Socket = &SocketRef{ID: 9, Local: "127.0.0.1:40000", Remote: "127.0.0.1:5000"}
	rep := Check(events)
	if len(rep.Problems) != 1 {
		t.Fatalf("problems = %v, want 1", rep.Problems)
	}
	p := rep.Problems[0]
	if p.Kind != ProblemLeak || p.Subchannel != 4 || p.Target != "dns:///svc" || !strings.Contains(p.Message, "socket 9") || len(p.Events) == 0 {
		t.Fatalf("problem = %v", p)
	}
	// Closing the socket and writing destroy makes it clean.
	closeEv := ev(6, 4, KindSocketClose, 0, 0, "")
	closeEv.Socket = &SocketRef{ID: 9}
	events = append(events, closeEv, ev(7, 4, KindDestroy, 0, 0, ""))
	if rep := Check(events); !rep.Clean() || rep.Destroyed != 1 {
		t.Fatalf("complete trace: %+v", rep)
	}
}

func TestCheckUnrefWithoutRef(t *testing.T) {
	events := []Event{
		ev(1, 2, KindCreate, 0, 0, "a"),
		ev(2, 2, KindRef, 0, 1, "a"),
		ev(3, 2, KindUnref, 1, 0, "b"), // b never took a reference
		ev(4, 2, KindUnref, 0, -1, "a"),
		ev(5, 2, KindShutdown, 0, 0, "a"),
		ev(6, 2, KindDestroy, 0, 0, ""),
	}
	rep := Check(events)
	var msgs []string
	for _, p := range rep.Problems {
		if p.Kind != ProblemUnbalanced || p.Subchannel != 2 {
			t.Errorf("unexpected problem %v", p)
		}
		msgs = append(msgs, p.Message)
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, `"b", which held no reference`) || !strings.Contains(all, `"a" without a reference`) {
		t.Fatalf("problems:\n%s", all)
	}
}

func TestCheckReleasedButNeverShutDown(t *testing.T) {
	rep := Check([]Event{
		ev(1, 3, KindCreate, 0, 0, "a"),
		ev(2, 3, KindRef, 0, 1, "a"),
		ev(3, 3, KindUnref, 1, 0, "a"),
	})
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, "Shutdown never called") {
		t.Fatalf("problems = %v", rep.Problems)
	}
}

func TestCheckClosedManagerWithHeldSubchannel(t *testing.T) {
	rep := Check([]Event{
		ev(1, 3, KindCreate, 0, 0, "a"),
		ev(2, 3, KindRef, 0, 1, "a"),
		{Seq: 3, Manager: 1, Kind: KindManagerClose},
	})
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemLeak || rep.Live != 0 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestCheckSecondShutdownAndEventAfterDestroy(t *testing.T) {
	rep := Check([]Event{
		ev(1, 3, KindCreate, 0, 0, "a"),
		ev(2, 3, KindRef, 0, 1, "a"),
		ev(3, 3, KindUnref, 1, 0, "a"),
		ev(4, 3, KindShutdown, 0, 0, "a"),
		ev(5, 3, KindShutdown, 0, 0, "a"),
		ev(6, 3, KindDestroy, 0, 0, ""),
		ev(7, 3, KindRef, 0, 1, "zombie"),
	})
	var kinds []ProblemKind
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if len(kinds) != 2 || kinds[0] != ProblemInvalid || kinds[1] != ProblemInvalid {
		t.Fatalf("problems = %v", rep.Problems)
	}
}

func FuzzReadAndCheck(f *testing.F) {
	f.Add([]byte(`{"seq":1,"manager":1,"subchannel":1,"key":"k","event":"create","refs_before":0,"refs_after":0}` + "\n"))
	f.Add([]byte(`{"seq":2,"subchannel":1,"event":"unref","refs_before":0,"refs_after":-1}` + "\n{"))
	f.Add([]byte("\n\n{\"seq\":3,\"event\":\"socket_close\",\"subchannel\":9,\"socket\":null}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, _ := Read(bytes.NewReader(data))
		rep := Check(events)
		for _, p := range rep.Problems {
			_ = p.String()
		}
	})
}

func TestEvidenceKeepsTheStartAndTheEnd(t *testing.T) {
	// Just past the cap (the kept slice's capacity is then below twice
	// the cap) and far past it.
	for _, n := range []int{evidenceCap + 1, evidenceCap + 6, 100} {
		var ev []Event
		for i := range n {
			ev = append(ev, Event{Seq: uint64(i + 1), Subchannel: 1, Kind: KindRef})
		}
		got := evidence(ev, 1)
		if len(got) != evidenceCap || got[0].Seq != 1 || got[evidenceCap/2-1].Seq != evidenceCap/2 ||
			got[evidenceCap/2].Seq != uint64(n-evidenceCap/2+1) || got[len(got)-1].Seq != uint64(n) {
			t.Fatalf("evidence of %d events: %d kept, first %d, last %d", n, len(got), got[0].Seq, got[len(got)-1].Seq)
		}
	}
}

// TestCheckKeepsTheFirstAndLatestEvidence: a subchannel's evidence is
// capped at evidenceCap events: the first half (create, the first refs) and
// the latest ones.
func TestCheckKeepsTheFirstAndLatestEvidence(t *testing.T) {
	events := []Event{ev(1, 5, KindCreate, 0, 0, "a")}
	for i := range 40 {
		events = append(events, ev(uint64(2+i), 5, KindRef, i, i+1, fmt.Sprintf("h%d", i)))
	}
	events = append(events, Event{Seq: 100, Manager: 1, Kind: KindManagerClose})
	rep := Check(events)
	if len(rep.Problems) != 1 {
		t.Fatalf("problems = %v, want the one leak", rep.Problems)
	}
	var got []uint64
	for _, e := range rep.Problems[0].Events {
		got = append(got, e.Seq)
	}
	var want []uint64
	for s := uint64(1); s <= evidenceCap/2; s++ {
		want = append(want, s)
	}
	for s := uint64(41 - evidenceCap/2 + 1); s <= 41; s++ {
		want = append(want, s)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("evidence seqs %v, want %v", got, want)
	}
}

// TestCheckKeepsTheOrderOfEventsWithEqualSeq: the checker sorts by seq
// and keeps the order of events that share one (traces of two processes
// concatenated), so a create still comes before its first ref.
func TestCheckKeepsTheOrderOfEventsWithEqualSeq(t *testing.T) {
	rep := Check([]Event{
		ev(7, 1, KindCreate, 0, 0, "a"),
		ev(7, 1, KindRef, 0, 1, "a"),
	})
	if !rep.Clean() || rep.Live != 1 {
		t.Fatalf("report = %+v, want one live subchannel and no problem", rep)
	}
}

// TestCheckCountsPerHolder: the checker counts each holder's references:
// an unref by a holder that has none left is named, and a later ref and
// unref by it are balanced again.
func TestCheckCountsPerHolder(t *testing.T) {
	rep := Check([]Event{
		ev(1, 2, KindCreate, 0, 0, "a"),
		ev(2, 2, KindRef, 0, 1, "a"),
		ev(3, 2, KindRef, 1, 2, "b"),
		ev(4, 2, KindUnref, 2, 1, "a"),
		ev(5, 2, KindUnref, 1, 0, "a"), // a holds none: b's reference
		ev(6, 2, KindRef, 0, 1, "a"),
		ev(7, 2, KindUnref, 1, 0, "a"),
		ev(8, 2, KindShutdown, 0, 0, "a"),
		ev(9, 2, KindDestroy, 0, 0, ""),
	})
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemUnbalanced || !strings.Contains(rep.Problems[0].Message, `unref by "a", which held no reference (seq 5)`) {
		t.Fatalf("problems = %v, want one: a's unref at seq 5", rep.Problems)
	}
}

// TestCheckUnrefAtZeroDoesNotGoNegative: an unref with no reference is
// one problem; the count stays at zero, so the Shutdown after it is fine.
func TestCheckUnrefAtZeroDoesNotGoNegative(t *testing.T) {
	rep := Check([]Event{
		ev(1, 2, KindCreate, 0, 0, "a"),
		ev(2, 2, KindRef, 0, 1, "a"),
		ev(3, 2, KindUnref, 1, 0, "a"),
		ev(4, 2, KindUnref, 0, -1, "a"),
		ev(5, 2, KindShutdown, 0, 0, "a"),
		ev(6, 2, KindDestroy, 0, 0, ""),
	})
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, `unref by "a" without a reference (seq 4)`) {
		t.Fatalf("problems = %v, want exactly the unref without a reference", rep.Problems)
	}
	if rep.Destroyed != 1 || rep.Subchannels != 1 || rep.Events != 6 {
		t.Fatalf("report = %+v", rep)
	}
}
