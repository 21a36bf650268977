package subconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func ev(seq uint64, sc uint64, kind Kind, before, after int, holder string) Event {
	return Event{Seq: seq, Manager: 1, Target: "dns:///svc", Subchannel: sc, Key: "127.0.0.1:5000", Kind: kind, RefsBefore: before, RefsAfter: after, Holder: holder}
}

func TestCheckTraceMissingDestroy(t *testing.T) {
	events := []Event{
		ev(1, 4, KindCreate, 0, 0, "a"),
		ev(2, 4, KindRef, 0, 1, "a"),
		ev(3, 4, KindSocketOpen, 1, 1, ""),
		ev(4, 4, KindUnref, 1, 0, "a"),
		ev(5, 4, KindShutdown, 0, 0, "a"),
	}
	events[2].Socket = &SocketRef{ID: 9, Local: "127.0.0.1:40000", Remote: "127.0.0.1:5000"}
	rep := CheckTrace(events)
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
	if rep := CheckTrace(events); !rep.Clean() || rep.Destroyed != 1 {
		t.Fatalf("complete trace: %+v", rep)
	}
}

func TestCheckTraceUnrefWithoutRef(t *testing.T) {
	events := []Event{
		ev(1, 2, KindCreate, 0, 0, "a"),
		ev(2, 2, KindRef, 0, 1, "a"),
		ev(3, 2, KindUnref, 1, 0, "b"), // b never took a reference
		ev(4, 2, KindUnref, 0, -1, "a"),
		ev(5, 2, KindShutdown, 0, 0, "a"),
		ev(6, 2, KindDestroy, 0, 0, ""),
	}
	rep := CheckTrace(events)
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

func TestCheckTraceReleasedButNeverShutDown(t *testing.T) {
	rep := CheckTrace([]Event{
		ev(1, 3, KindCreate, 0, 0, "a"),
		ev(2, 3, KindRef, 0, 1, "a"),
		ev(3, 3, KindUnref, 1, 0, "a"),
	})
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0].Message, "Shutdown never called") {
		t.Fatalf("problems = %v", rep.Problems)
	}
}

func TestCheckTraceClosedManagerWithHeldSubchannel(t *testing.T) {
	rep := CheckTrace([]Event{
		ev(1, 3, KindCreate, 0, 0, "a"),
		ev(2, 3, KindRef, 0, 1, "a"),
		{Seq: 3, Manager: 1, Kind: KindManagerClose},
	})
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemLeak || rep.Live != 0 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestCheckTraceSecondShutdownAndEventAfterDestroy(t *testing.T) {
	rep := CheckTrace([]Event{
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

func TestReadTraceNamesTheBadLine(t *testing.T) {
	good := `{"seq":1,"manager":1,"subchannel":1,"key":"k","event":"create","refs_before":0,"refs_after":0}`
	for name, tc := range map[string]struct {
		in   string
		line int
	}{
		"garbage":   {good + "\n\nnot json\n", 3},
		"truncated": {good + "\n" + good[:40], 2},
		"not event": {good + "\n{\"a\":1}\n", 2},
		"huge line": {good + "\n" + strings.Repeat("x", maxTraceLine+10) + "\n", 2},
	} {
		_, err := ReadTrace(strings.NewReader(tc.in))
		var te *TraceError
		if !errors.As(err, &te) || te.Line != tc.line {
			t.Errorf("%s: err = %v, want a TraceError at line %d", name, err, tc.line)
		}
	}
	events, err := ReadTrace(strings.NewReader(good + "\n" + good + "\n"))
	if err != nil || len(events) != 2 || events[0].Kind != KindCreate {
		t.Fatalf("ReadTrace(good) = %v, %v", events, err)
	}
}

func TestTraceWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	tw := NewTraceWriter(&buf, 0, func(e *Event) bool { return e.Target == "fake:///roundtrip" })
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///roundtrip"), WithTraceRing(0))
	h, _ := m.Acquire(addr("10.0.0.1:1"), "one")
	h.Release("done")
	m.Close()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := ReadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 7 { // manager_open, create, ref, unref, shutdown, destroy, manager_close
		t.Fatalf("round trip gave %d events: %v", len(events), events)
	}
	if rep := CheckTrace(events); !rep.Clean() || rep.Destroyed != 1 {
		t.Fatalf("CheckTrace = %+v", rep)
	}
}

func FuzzReadAndCheckTrace(f *testing.F) {
	f.Add([]byte(`{"seq":1,"manager":1,"subchannel":1,"key":"k","event":"create","refs_before":0,"refs_after":0}` + "\n"))
	f.Add([]byte(`{"seq":2,"subchannel":1,"event":"unref","refs_before":0,"refs_after":-1}` + "\n{"))
	f.Add([]byte("\n\n{\"seq\":3,\"event\":\"socket_close\",\"subchannel\":9,\"socket\":null}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, _ := ReadTrace(bytes.NewReader(data))
		rep := CheckTrace(events)
		for _, p := range rep.Problems {
			_ = p.String()
		}
	})
}

func h2frame(typ byte, payload []byte) []byte {
	hdr := []byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), typ, 0, 0, 0, 0, 0}
	return append(hdr, payload...)
}

func TestH2SnifferFindsGoAwayAcrossReads(t *testing.T) {
	ga := make([]byte, 8)
	binary.BigEndian.PutUint32(ga[4:], 11) // ENHANCE_YOUR_CALM
	ga = append(ga, "too_many_pings"...)
	stream := append(h2frame(h2FrameSettings, make([]byte, 12)), h2frame(0x1, make([]byte, 300))...)
	stream = append(stream, h2frame(h2FrameGoAway, ga)...)
	for _, chunk := range []int{1, 3, 7, 64, len(stream)} {
		var s h2Sniffer
		var code uint32
		var seen bool
		for p := stream; len(p) > 0; {
			n := min(chunk, len(p))
			if c, ok := s.feed(p[:n]); ok {
				code, seen = c, true
			}
			p = p[n:]
		}
		if !seen || code != 11 || h2ErrCode(code) != "ENHANCE_YOUR_CALM" {
			t.Errorf("chunk %d: seen %v code %d", chunk, seen, code)
		}
	}
}

func TestH2SnifferTurnsOffForTLS(t *testing.T) {
	var s h2Sniffer
	// A TLS ServerHello record, then bytes that would look like a GOAWAY.
	tls := append([]byte{0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0, 0, 0}, h2frame(h2FrameGoAway, make([]byte, 8))...)
	if _, ok := s.feed(tls); ok || !s.off {
		t.Fatalf("sniffer on TLS bytes: goaway %v, off %v", ok, s.off)
	}
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
