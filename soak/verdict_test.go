package soak

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/leaktest"
)

// TestBaselineVerdictReadsTypedLeaks proves that the soak judges the final
// leaktest check by its typed result, not by message text: each leak is
// built here (a test double of leaktest.Find's result, since a real leak of
// each kind cannot be provoked on demand inside this package's own test
// process) with wording no leaktest message uses, and still fails its check
// and only its check.
func TestBaselineVerdictReadsTypedLeaks(t *testing.T) {
	backend := netip.MustParseAddrPort("127.0.0.1:50051")
	sock := &leaktest.Socket{Inode: 42, Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: backend, State: "ESTABLISHED"}
	tests := []struct {
		name  string
		leaks *leaktest.Leaks
		fail  []string // the checks that must fail; the others must pass
	}{
		{"nothing", nil, nil},
		{"goroutines", &leaktest.Leaks{Goroutines: errors.New("one extra worker, reworded")}, []string{CheckGoroutines}},
		{"descriptor", &leaktest.Leaks{FDs: []leaktest.FD{{Num: 9, Target: "/tmp/reworded"}}}, []string{CheckFDs}},
		{"sockets", &leaktest.Leaks{Backends: []leaktest.BackendSockets{{Backend: backend, Baseline: 0, Now: 1, FDs: []leaktest.FD{{Num: 10, Target: "socket:[42]", Socket: sock}}}}}, []string{CheckSockets}},
		{"held elsewhere", &leaktest.Leaks{Backends: []leaktest.BackendSockets{{Backend: backend, Baseline: 0, Now: 1, Elsewhere: []leaktest.HeldSocket{{Socket: *sock, PID: 4242, Command: "worker --reworded"}}}}}, []string{CheckSockets}},
		{"unreadable", &leaktest.Leaks{Errors: []error{errors.New("reworded: cannot look")}}, []string{CheckFDs, CheckSockets}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := baselineChecks(tt.leaks)
			if len(checks) != 3 {
				t.Fatalf("got %d checks, want 3: %+v", len(checks), checks)
			}
			for _, c := range checks {
				wantFail := false
				for _, name := range tt.fail {
					wantFail = wantFail || c.Name == name
				}
				if c.Pass == wantFail {
					t.Errorf("check %q: Pass = %v, want %v (detail: %s)", c.Name, c.Pass, !wantFail, c.Detail)
				}
				if wantFail && c.Detail == "" {
					t.Errorf("check %q failed without evidence", c.Name)
				}
			}
		})
	}
	// The evidence reaches the detail: the socket and its descriptor.
	for _, c := range baselineChecks(tests[3].leaks) {
		if c.Name == CheckSockets && !strings.Contains(c.Detail, "127.0.0.1:40000 -> 127.0.0.1:50051 ESTABLISHED") {
			t.Errorf("sockets check does not show the socket: %s", c.Detail)
		}
	}
	// A connection another process holds names that process.
	for _, c := range baselineChecks(tests[4].leaks) {
		if c.Name == CheckSockets && !strings.Contains(c.Detail, "held by process 4242 (worker --reworded)") {
			t.Errorf("sockets check does not name the process holding the connection: %s", c.Detail)
		}
	}
}
