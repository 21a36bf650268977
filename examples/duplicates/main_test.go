package main

import (
	"strings"
	"testing"

	"github.com/leakproof/leakproof/examples/internal/extest"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

func TestSharedSubchannelSurvivesGoAwayAndResetAndIsDestroyed(t *testing.T) {
	out, events := extest.Run(t, run)
	extest.WantLines(t, out,
		"connected:      1 socket to A (leaktest.SocketsTo), subchannel #",
		"held by 2: endpoint{",
		"GOAWAY:         goaway: server sent GOAWAY",
		"socket closed:  reset: connection reset by peer (RST)",
		"A removed:      0 sockets to A",
		"trace.Check: 2 subchannels, 2 destroyed, clean",
		"connected:      2 sockets to A (leaktest.SocketsTo), one per endpoint",
	)
	var traced []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "    seq=") {
			traced = append(traced, line)
		}
	}
	if len(traced) == 0 || !strings.Contains(traced[len(traced)-1], " destroy ") {
		t.Errorf("the printed trace of A does not end in destroy: %q", traced)
	}

	// The trace, recorded independently of the example: the shared backend
	// is the one whose subchannel two endpoints held.
	extest.CheckReleased(t, events)
	var a string
	for _, e := range events {
		if e.Kind == trace.KindRef && e.RefsAfter == 2 {
			a = e.Key
		}
	}
	if a == "" {
		t.Fatalf("no subchannel was held by two endpoints\n%s", extest.Format(events))
	}
	for kind, want := range map[trace.Kind]int{trace.KindCreate: 1, trace.KindShutdown: 1, trace.KindDestroy: 1} {
		if n := extest.Count(events, kind, a); n != want {
			t.Errorf("%d %s events for the shared backend, want %d: one subchannel across GOAWAY and reset", n, kind, want)
		}
	}
	if extest.Count(events, trace.KindGoAway, a) == 0 || extest.Count(events, trace.KindConnLost, a) == 0 {
		t.Errorf("the shared subchannel saw no GOAWAY or no lost connection\n%s", extest.Format(events))
	}
	if n := extest.Count(events, trace.KindSocketOpen, a); n < 2 {
		t.Errorf("%d sockets opened to the shared backend, want one before and one after the GOAWAY", n)
	}
}

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
