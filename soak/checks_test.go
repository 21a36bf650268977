package soak

import (
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// The RPC failure check: a rate within the limit passes, at the limit too;
// a negative limit allows no failure; a run with no RPC fails.
func TestRPCCheckJudgesTheFailureRate(t *testing.T) {
	tests := []struct {
		name   string
		s      RPCStats
		limit  float64
		pass   bool
		detail string
	}{
		{"no RPC", RPCStats{}, 0.01, false, "no RPC completed"},
		{"none failed", RPCStats{OK: 100}, 0.01, true, "0 of 100 RPCs failed"},
		{"at the limit", RPCStats{OK: 99, Failed: 1}, 0.01, true, "1.000%: 1 of 100 RPCs failed after retries (limit 1%)"},
		{"over the limit", RPCStats{OK: 98, Failed: 2, Retries: 7}, 0.01, false, "2.000%: 2 of 100 RPCs failed after retries (limit 1%); 7 retries"},
		{"none allowed, none failed", RPCStats{OK: 5}, -1, true, "0 of 5 RPCs failed after retries (none allowed)"},
		{"none allowed, one failed", RPCStats{OK: 1000, Failed: 1}, -1, false, "1 of 1001 RPCs failed after retries (none allowed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rpcCheck(CheckRPCFailures, tt.s, tt.limit)
			if c.Name != CheckRPCFailures || c.Pass != tt.pass || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("rpcCheck(%+v, %v) = %q pass %v: %s; want pass %v with %q", tt.s, tt.limit, c.Name, c.Pass, c.Detail, tt.pass, tt.detail)
			}
		})
	}
}

// The removal check fails on a leaked removal only, names each leaked
// backend with its evidence, and counts the other outcomes.
func TestRemovalCheckNamesLeakedBackends(t *testing.T) {
	const bound = 2 * time.Second
	leaked := Removal{Backend: "b3", Addr: "127.0.0.1:4003", Fault: FaultDuplicate, RemovedAt: jsontime.Duration(3 * time.Second), Outcome: RemovalLeaked, After: jsontime.Duration(2100 * time.Millisecond), Sockets: 1, Evidence: "fd 12"}
	unasked := Removal{Backend: "b1", Addr: "127.0.0.1:4001", RemovedAt: jsontime.Duration(time.Second), Outcome: RemovalUnasked, After: jsontime.Duration(3 * time.Second)}
	tests := []struct {
		name string
		rs   Removals
		pass bool
		want []string
	}{
		{"none", Removals{}, true, []string{"0 removal(s); bound 2s"}},
		{"released", Removals{Released: 3, Readded: 1, Open: 2, SlowestRelease: jsontime.Duration(45 * time.Millisecond)}, true,
			[]string{"6 removal(s)", "3 released (the slowest after 45ms)", "1 re-added before release", "2 still within the bound when the run ended"}},
		{"leaked", Removals{Released: 1, Leaked: 1, List: []Removal{leaked}}, false,
			[]string{"1 leaked: backend b3 (127.0.0.1:4003): 1 socket(s) still open 2.1s after the resolver removed it at 3.00s (fault dup), channel still open; bound 2s: fd 12", "2 removal(s)"}},
		{"unasked", Removals{Unasked: 1, List: []Removal{unasked}}, true,
			[]string{"1 never learned", "removed while healthy and not released for longer than the bound: b1 (127.0.0.1:4001) removed from DNS at 1.00s, still open 3s later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := removalCheck(CheckRemovals, tt.rs, bound)
			if c.Pass != tt.pass {
				t.Errorf("pass = %v, want %v: %s", c.Pass, tt.pass, c.Detail)
			}
			for _, w := range tt.want {
				if !strings.Contains(c.Detail, w) {
					t.Errorf("detail does not say %q: %s", w, c.Detail)
				}
			}
		})
	}
}

// The closed-channel check fails when a closed channel kept a socket, and
// lists it.
func TestClosedCheckListsChannelsThatKeptSockets(t *testing.T) {
	r := &runner{cfg: Config{DrainTimeout: time.Second, RemovalSlack: time.Second}}
	r.closedOK = 4
	if c := r.closedCheck(); !c.Pass || !strings.Contains(c.Detail, "4 channel(s) closed; each released its sockets within 2s") {
		t.Errorf("closedCheck with none failed = pass %v: %s", c.Pass, c.Detail)
	}
	r.closedFailed = 1
	r.closedFailures = []string{"channel churn-3: 1 socket(s) (b0:1) still open 2.5s after Close"}
	if c := r.closedCheck(); c.Pass || !strings.Contains(c.Detail, "1 of 5 closed channel(s) kept sockets open: channel churn-3") {
		t.Errorf("closedCheck with one failed = pass %v: %s", c.Pass, c.Detail)
	}
}

// The socket limit is judged only when set; the report says where the
// most sockets to one backend were seen.
func TestLimitCheckJudgesOnlyASetLimit(t *testing.T) {
	r := &runner{cfg: Config{Policy: "round_robin"}}
	ut := newUnderTest(r.cfg)[0]
	ut.limit = limitStat{max: 2, where: "b0 at 2.4s"}
	if c := r.limitCheck(ut); !c.Pass || !c.Info || !strings.Contains(c.Detail, "at most 2 socket(s) to one backend outside drain windows (b0 at 2.4s); not checked for round_robin") {
		t.Errorf("limitCheck without a limit = pass %v info %v: %s", c.Pass, c.Info, c.Detail)
	}
	r.cfg.SocketLimit = 1
	ut.limit.max = 1
	if c := r.limitCheck(ut); !c.Pass || c.Info || !strings.Contains(c.Detail, "limit 1") {
		t.Errorf("limitCheck within the limit = pass %v info %v: %s", c.Pass, c.Info, c.Detail)
	}
	r.limitFailures = []string{"b2: 2 sockets at 3.1s"}
	if c := r.limitCheck(ut); c.Pass || !strings.Contains(c.Detail, "over the limit of 1 in two samples in a row, outside drain windows: b2: 2 sockets at 3.1s") {
		t.Errorf("limitCheck over the limit = pass %v: %s", c.Pass, c.Detail)
	}
}

// The comparison channel is judged by the same checks as the main
// channel, named with its prefix and informational; its sockets are held
// to one per backend whatever Config.SocketLimit says, and the main
// channel's limit failures are not its own.
func TestCompareChecksAreMainsInformed(t *testing.T) {
	cfg := Config{Policy: "leakproof_round_robin", Compare: "round_robin", SocketLimit: 1}
	r := &runner{cfg: cfg}
	r.limitFailures = []string{"b2: 2 sockets at 3.1s"}
	uts := newUnderTest(cfg)
	if len(uts) != 2 || uts[0].info || !uts[1].info {
		t.Fatalf("newUnderTest = %d channels", len(uts))
	}
	main, cmp := uts[0], uts[1]
	cmp.limit = limitStat{max: 2, where: "b1 at 1.0s"}
	rpcs := RPCStats{OK: 10}
	want := []string{CheckRPCFailures, CheckRemovals, CheckSocketLimit}
	mc, cc := r.checks(main, rpcs, Removals{}), r.checks(cmp, rpcs, Removals{})
	if len(mc) != len(want) || len(cc) != len(want) {
		t.Fatalf("checks = %d main, %d compare, want %d", len(mc), len(cc), len(want))
	}
	for i, name := range want {
		if mc[i].Name != name || mc[i].Info {
			t.Errorf("main check %d = %q info %v, want %q judged", i, mc[i].Name, mc[i].Info, name)
		}
		if cc[i].Name != "compare round_robin: "+name || !cc[i].Info {
			t.Errorf("compare check %d = %q info %v, want %q informational", i, cc[i].Name, cc[i].Info, "compare round_robin: "+name)
		}
		if i < 2 && (cc[i].Pass != mc[i].Pass || cc[i].Detail != mc[i].Detail) {
			t.Errorf("compare check %q = %v %q, main's = %v %q", name, cc[i].Pass, cc[i].Detail, mc[i].Pass, mc[i].Detail)
		}
	}
	if c := cc[2]; c.Pass || c.Detail != "at most 2 socket(s) to one backend outside drain windows (b1 at 1.0s)" {
		t.Errorf("compare socket limit = pass %v: %s", c.Pass, c.Detail)
	}
	if c := mc[2]; c.Pass {
		t.Errorf("main socket limit with a failure = pass: %s", c.Detail)
	}
}
