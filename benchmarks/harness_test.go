package benchmarks

import (
	"testing"

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
