package main

import (
	"testing"

	"github.com/leakproof/leakproof/examples/internal/extest"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestOneSubchannelAndOneSocketPerBackendAllClosed(t *testing.T) {
	out, events := extest.Run(t, run)
	extest.WantLines(t, out,
		"with leakproof_round_robin and subconn.Dialer",
		"9 RPCs: backend-0 3, backend-1 3, backend-2 3",
		"channel closed: 0 sockets to any backend",
	)
	if n := len(extest.Lines(out, " READY refs 1, owns socket ")); n != 3 {
		t.Errorf("%d subchannel lines with one socket each, want 3", n)
	}

	// The trace, recorded independently of the example: the policy made
	// one subchannel per backend, each owned exactly one socket, and all
	// were released.
	if n := extest.CheckReleased(t, events); n != 3 {
		t.Fatalf("%d subchannels created, want 3\n%s", n, extest.Format(events))
	}
	for _, e := range events {
		if e.Kind == trace.KindCreate {
			if n := extest.Count(events, trace.KindSocketOpen, e.Key); n != 1 {
				t.Errorf("%d sockets opened to %s, want 1 (is subconn.Dialer installed?)", n, e.Key)
			}
		}
	}
}
