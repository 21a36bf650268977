package subconn_test

import (
	"testing"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// TestRemoveSubConnReleasesTheSubchannel: a child that still uses the
// deprecated ClientConn.RemoveSubConn must release its subchannel like
// Shutdown does, or the subchannel and its socket outlive the child.
func TestRemoveSubConnReleasesTheSubchannel(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	a := bs[0].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(probePolicy, ""), e2e.AddrState(a), e2e.Options{})
	p := probeOf(t, c)

	child := p.M.ClientConn(p.CC, "old child")
	var w stateWaiter
	sc, err := child.NewSubConn([]resolver.Address{{Addr: a}}, balancer.NewSubConnOptions{StateListener: w.listen})
	if err != nil {
		t.Fatal(err)
	}
	sc.Connect()
	w.waitFor(t, connectivity.Ready, 1)
	if n := e2e.Sockets(t, a); n != 1 {
		t.Fatalf("%d sockets to the backend while READY, want 1", n)
	}

	child.RemoveSubConn(sc)
	// The release and Shutdown happen within the call.
	if n := c.Trace.Count(trace.KindShutdown, a); n != 1 {
		t.Fatalf("%d shutdowns when RemoveSubConn returned, want 1\n%s", n, e2e.Format(c.Trace.Events()))
	}
	c.Trace.WaitFor(t, "destroy after RemoveSubConn", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindDestroy, a) == 1
	})
	if s := p.M.Snapshot(); len(s) != 0 {
		t.Fatalf("subchannels left after RemoveSubConn: %+v", s)
	}
	e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	c.CC.Close()
	c.Trace.CheckClean(t)
}
