package main

import (
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/examples/internal/extest"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestWatchThroughTheAdminServiceShowsTheTrace(t *testing.T) {
	out, events := extest.Run(t, func(w io.Writer) error { return run(w, 0) })
	extest.WantLines(t, out,
		"leakproof trace watch --addr 127.0.0.1:",
		`conn_lost state=IDLE reason="reset: connection reset by peer (RST)"`,
		" READY refs 1 holders endpoint{",
		"1 subchannel(s) alive",
		"0 problem(s)",
		"GET /debug/leakproof/json?target=...: 200 OK, 1 subchannel(s)",
	)

	// Every watched line is the event the process emitted with that seq,
	// recorded independently of the admin service; the watch missed none
	// of the channel's events and ends with its last destroy.
	bySeq := map[uint64]trace.Event{}
	for _, e := range events {
		bySeq[e.Seq] = e
	}
	var watched []trace.Event
	for _, line := range extest.Lines(out, "  watch | ") {
		text := strings.TrimPrefix(line, "  watch | ")
		seq, err := strconv.ParseUint(strings.TrimPrefix(strings.Fields(text)[0], "seq="), 10, 64)
		if err != nil {
			t.Fatalf("watch line %q: %v", line, err)
		}
		e, ok := bySeq[seq]
		if !ok || e.String() != text {
			t.Fatalf("watched %q, the process emitted %q", text, e.String())
		}
		watched = append(watched, e)
	}
	if len(watched) == 0 {
		t.Fatal("nothing watched")
	}
	target := watched[0].Target
	n := 0
	for _, e := range events {
		if e.Target == target {
			n++
		}
	}
	if n != len(watched) {
		t.Errorf("the watch printed %d events of %s, the process emitted %d", len(watched), target, n)
	}
	if last := watched[len(watched)-1]; last.Kind != trace.KindDestroy {
		t.Errorf("the watch ends with %v, want a destroy", last)
	}
	if created := extest.CheckReleased(t, events); created != 2 {
		t.Errorf("%d subchannels created, want 2", created)
	}
}
