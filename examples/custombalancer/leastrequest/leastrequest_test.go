package leastrequest

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
	"google.golang.org/grpc/balancer"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// newPicker returns a picker over backends with the given requests in
// flight. Pick never calls into the SubConn it returns, so a placeholder
// stands in for a real one here; main_test.go runs the policy for real.
func newPicker(inFlight ...int64) *picker {
	p := &picker{}
	for _, n := range inFlight {
		l := &load{sc: &struct{ balancer.SubConn }{}}
		l.done = func(balancer.DoneInfo) { l.inFlight.Add(-1) }
		l.inFlight.Store(n)
		p.ready = append(p.ready, l)
	}
	return p
}

func TestPickNeverTakesTheMostLoadedOfTwoOrMore(t *testing.T) {
	for _, loads := range [][]int64{{5, 0}, {0, 5}, {5, 0, 0}, {0, 3, 1}} {
		p := newPicker(loads...)
		worst := 0
		for i, n := range loads {
			if n > loads[worst] {
				worst = i
			}
		}
		for range 200 {
			res, err := p.Pick(balancer.PickInfo{})
			if err != nil {
				t.Fatal(err)
			}
			if res.SubConn == p.ready[worst].sc {
				t.Fatalf("loads %v: picked the most loaded backend %d", loads, worst)
			}
			res.Done(balancer.DoneInfo{})
		}
	}
}

func TestPickCountsUntilDone(t *testing.T) {
	p := newPicker(0)
	res, _ := p.Pick(balancer.PickInfo{})
	if n := p.ready[0].inFlight.Load(); n != 1 {
		t.Fatalf("%d in flight after a pick, want 1", n)
	}
	res.Done(balancer.DoneInfo{})
	if n := p.ready[0].inFlight.Load(); n != 0 {
		t.Fatalf("%d in flight after Done, want 0", n)
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	p := newPicker(0, 0, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		res, _ := p.Pick(balancer.PickInfo{})
		res.Done(balancer.DoneInfo{})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pick, want 0", allocs)
	}
}
