package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/leakproof/leakproof/examples/internal/extest"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestNoRPCFailsThroughGoAways(t *testing.T) {
	out, events := extest.Run(t, run)
	extest.WantLines(t, out,
		`msg="finished call"`, // the logging interceptor, through slog
		"trace check clean; 0 sockets to any backend",
	)
	m := regexp.MustCompile(`(\d+) RPCs in \S+: (\d+) failed`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no RPC summary line")
	}
	if sent, _ := strconv.Atoi(m[1]); sent < 100 {
		t.Errorf("%d RPCs sent, want a steady stream", sent)
	}
	if m[2] != "0" {
		t.Errorf("%s RPCs failed, want 0", m[2])
	}
	g := regexp.MustCompile(`GOAWAYs seen \(trace\): (\d+)`).FindStringSubmatch(out)
	if g == nil {
		t.Fatal("no GOAWAY count")
	}

	// The trace, recorded independently of the example: as many GOAWAYs as
	// printed, each backend's one subchannel reconnected after them, and
	// everything released.
	if n := extest.Count(events, trace.KindGoAway, ""); strconv.Itoa(n) != g[1] || n < 2 {
		t.Errorf("%d GOAWAYs in the trace, the example printed %s; want several", n, g[1])
	}
	if n := extest.CheckReleased(t, events); n != 2 {
		t.Errorf("%d subchannels for 2 backends across the GOAWAYs, want 2 (reconnect, never replace)", n)
	}
	// One connect each at the start, one after each GOAWAY but the last.
	if c, g := extest.Count(events, trace.KindConnect, ""), extest.Count(events, trace.KindGoAway, ""); c < g {
		t.Errorf("%d connects after %d GOAWAYs: the subchannels did not reconnect", c, g)
	}
}
