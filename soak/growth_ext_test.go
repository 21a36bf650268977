package soak_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/soak"
)

// freezeCycles is a soak of the freeze fault alone, long enough for three
// phases (phases are at most 3s).
const freezeCycles = 11 * time.Second

// TestFreezeRepeatsHoldNothingOver drives the freeze fault for three
// cycles: the frozen backend's descriptors must not climb from one freeze
// to the next, and its held connections stay within what each phase
// allows.
func TestFreezeRepeatsHoldNothingOver(t *testing.T) {
	res := soak.Verify(t, soak.Config{Duration: freezeCycles, Faults: []soak.Fault{soak.FaultFreeze}, Logf: t.Logf})
	if res == nil {
		t.FailNow()
	}
	var frozen *soak.Slope
	for i, s := range res.Slopes {
		if s.Series == "fds: backend frozen in phase freeze" {
			frozen = &res.Slopes[i]
		}
	}
	if frozen == nil || !frozen.Judged || frozen.Points < 3 {
		t.Fatalf("the frozen backend's descriptors across freezes were not judged: %+v", frozen)
	}
	if frozen.Rise() > 1 {
		t.Errorf("the frozen backend's floor rises %+.1f over %d freezes", frozen.Rise(), frozen.Points)
	}
	held := 0
	for _, s := range res.Samples {
		held = max(held, s.Held["frozen"])
	}
	if held == 0 {
		t.Errorf("the frozen backend never held a connection: the freeze did nothing")
	}
}

// TestFrozenBackendThatHoldsUntilShutdownFails brings back the frozen
// backend the soak used to run: one that holds every connection, unread,
// until shutdown. Everything is released when the backend closes, so the
// checks at the end pass; the checks made during the run must fail, naming
// the frozen backend and its growth.
func TestFrozenBackendThatHoldsUntilShutdownFails(t *testing.T) {
	restore := soak.StallFrozenBackendForever()
	defer restore()
	rec := &recorder{}
	res := soak.Verify(rec, soak.Config{Duration: freezeCycles, Faults: []soak.Fault{soak.FaultFreeze}})
	if res == nil {
		t.Fatalf("soak did not run: %v", rec.errs)
	}
	t.Logf("the verdict:\n%s", res.Verdict())
	if res.Pass {
		t.Fatalf("a frozen backend that holds connections until shutdown passed:\n%s", text(res))
	}
	growth := checkByName(t, res, soak.CheckGrowth)
	if growth.Pass || !strings.Contains(growth.Detail, "backend frozen in phase freeze") {
		t.Errorf("%s does not name the frozen backend's growth across freezes: %s", growth.Name, growth.Detail)
	}
	conns := checkByName(t, res, soak.CheckBackendConns)
	if conns.Pass || !strings.Contains(conns.Detail, "backend frozen holds") {
		t.Errorf("%s does not name the frozen backend's held connections: %s", conns.Name, conns.Detail)
	}
	for _, name := range []string{soak.CheckFDs, soak.CheckSockets, soak.CheckGoroutines} {
		if c := checkByName(t, res, name); !c.Pass {
			t.Errorf("%s failed, but shutdown releases everything: %s", name, c.Detail)
		}
	}
}
