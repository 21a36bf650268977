package benchmarks

import (
	"testing"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/balancer"
)

// TestChurnOnFakeBalances runs the churn benchmarks' set-up once per policy
// (a few updates, no timing) so that the harness itself is checked by the
// default test run: every policy reaches READY on every backend of each
// list, and every SubConn it created is shut down exactly once.
func TestChurnOnFakeBalances(t *testing.T) {
	for _, p := range policyImpls {
		t.Run(p.String(), func(t *testing.T) {
			lists := [2]int{0, 1}
			f := buildOnFake(t, p.builder, "")
			for i := range 4 {
				eps := churnEndpoints(100, 10, lists[i%2])
				first, all := firstAddrs(eps)
				want := first
				if !p.roundRobin() {
					want = all
				}
				f.update(t, eps)
				f.cc.waitFor(t, "READY on the new list", readyOn(want, p.roundRobin(), len(eps)))
			}
			if created, _ := f.cc.counts(); created == 0 {
				t.Fatal("no SubConn created")
			}
			f.close(t)
		})
	}
}

// TestPickersReturnRealSubConns checks that every policy's READY picker
// hands out the fake's own SubConns (leakproof's unwrapped), which is what
// BenchmarkPick times.
func TestPickersReturnRealSubConns(t *testing.T) {
	for _, p := range policyImpls {
		t.Run(p.String(), func(t *testing.T) {
			eps := simpleEndpoints(3)
			f := buildOnFake(t, p.builder, "")
			first, _ := firstAddrs(eps)
			f.update(t, eps)
			f.cc.waitFor(t, "READY", readyOn(first, p.roundRobin(), len(eps)))
			res, err := f.cc.current().Picker.Pick(balancer.PickInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := res.SubConn.(*fakeSC); !ok {
				t.Fatalf("picked a %T, want the fake's *fakeSC", res.SubConn)
			}
			f.close(t)
		})
	}
}

// TestGuardPickFirstPicksAsBare checks what BenchmarkGuardPick's pick_first
// rows rest on: under leakproof_guard, grpc's pick_first's READY picker is
// replaced by one stored result of the real SubConn (the kind of picker
// leakproof_pick_first publishes), not wrapped in an unwrapping picker, so
// a pick costs what the bare child's does.
func TestGuardPickFirstPicksAsBare(t *testing.T) {
	eps := simpleEndpoints(3)
	_, all := firstAddrs(eps)
	f := buildOnFake(t, guard.Name, `{"childPolicy":[{"pick_first":{}}]}`)
	defer f.close(t)
	f.update(t, eps)
	f.cc.waitFor(t, "READY", readyOn(all, false, 1))
	p := f.cc.current().Picker
	if _, ok := p.(*policy.FixedPicker); !ok {
		t.Fatalf("the guard published a %T for pick_first's READY picker, want a *policy.FixedPicker", p)
	}
	res, err := p.Pick(balancer.PickInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.SubConn.(*fakeSC); !ok {
		t.Fatalf("picked a %T, want the fake's *fakeSC", res.SubConn)
	}
	if n := testing.AllocsPerRun(100, func() { p.Pick(balancer.PickInfo{}) }); n != 0 {
		t.Fatalf("a pick allocates %v times, want 0", n)
	}
}
