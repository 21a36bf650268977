package roundrobin_test

import (
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// TestRemovingAnEndpointLeavesTheOthersRemovable: an endpoint removed from
// the middle of the list (created before one that stays) leaves the others
// tracked, so that a later update removes them too and picks stop reaching
// them.
func TestRemovingAnEndpointLeavesTheOthersRemovable(t *testing.T) {
	b, f := build(t)
	update := func(as ...string) {
		t.Helper()
		if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as...)}); err != nil {
			t.Fatal(err)
		}
	}
	only := func(a string) {
		t.Helper()
		poll(t, "picks reaching "+a+" alone", func() bool {
			s, _ := f.current()
			if s.ConnectivityState != connectivity.Ready {
				return false
			}
			got := picked(t, f, 10)
			return len(got) == 1 && got[a] == 10
		})
	}
	update("s-a:1") // created first
	f.sc(t, "s-a:1").set(t, connectivity.Ready, nil)
	update("s-a:1", "s-b:1") // created after it
	f.sc(t, "s-b:1").set(t, connectivity.Ready, nil)
	update("s-b:1") // the first one goes
	only("s-b:1")
	update("s-c:1") // and then the one that stayed
	f.sc(t, "s-c:1").set(t, connectivity.Ready, nil)
	only("s-c:1")
}
