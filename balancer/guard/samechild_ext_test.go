package guard_test

import (
	"fmt"
	"testing"

	"github.com/leakproof/leakproof/balancer/guard"
	"google.golang.org/grpc/balancer"
)

// TestUpdatesNamingTheSameChildReachOneChild: every update naming the child
// policy the guard runs goes to that one child, built once and never closed
// until the guard is: a child rebuilt per update would lose its state
// (strict connects its other SubConns only from its third update on).
func TestUpdatesNamingTheSameChildReachOneChild(t *testing.T) {
	bb := balancer.Get(guard.Name)
	cfg, err := bb.(balancer.ConfigParser).ParseConfig([]byte(fmt.Sprintf(`{"childPolicy":[{%q:{}}]}`, strictName)))
	if err != nil {
		t.Fatal(err)
	}
	g := bb.Build(parentCC{}, balancer.BuildOptions{})
	defer g.Close()
	if err := g.UpdateClientConnState(balancer.ClientConnState{BalancerConfig: cfg}); err != nil {
		t.Fatal(err)
	}
	first := strictBuilt.Load()
	for i := 2; i <= 3; i++ {
		if err := g.UpdateClientConnState(balancer.ClientConnState{BalancerConfig: cfg}); err != nil {
			t.Fatal(err)
		}
		if c := strictBuilt.Load(); c != first || c.closes.Load() != 0 {
			t.Fatalf("update %d built a new child or closed the first (%d closes)", i, first.closes.Load())
		}
	}
}
