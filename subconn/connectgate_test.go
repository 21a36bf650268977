package subconn

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// grpc's StateListener contract: "will never be invoked until after
// Connect() is called on the SubConn". A child on Manager.ClientConn whose
// SubConn shares a subchannel that is already READY hears nothing, not
// even later changes of it, until it calls Connect; then it is told the
// current state.
func TestClientConnHolderHearsNothingBeforeConnect(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	t.Cleanup(func() { m.Close(); cc.checkViolations(t) })
	c := m.ClientConn(cc, "child")

	var first, second recorder
	a, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: first.listen})
	if err != nil {
		t.Fatal(err)
	}
	a.Connect()
	cc.sc(0).push(connectivity.Connecting)
	cc.sc(0).push(connectivity.Ready)
	waitFor(t, "the first holder READY", func() bool {
		return slices.Equal(first.get(), []connectivity.State{connectivity.Connecting, connectivity.Ready})
	})

	b, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: second.listen})
	if err != nil {
		t.Fatal(err)
	}
	cc.sc(0).push(connectivity.Idle)
	cc.sc(0).push(connectivity.Connecting)
	cc.sc(0).push(connectivity.Ready)
	time.Sleep(20 * time.Millisecond) // an update queued for it would have run
	if got := second.get(); len(got) != 0 {
		t.Fatalf("the second holder heard %v before its Connect", got)
	}
	b.Connect()
	waitFor(t, "the second holder told READY at its Connect", func() bool { return slices.Equal(second.get(), []connectivity.State{connectivity.Ready}) })
	if n := cc.sc(0).connects.Load(); n != 1 {
		t.Errorf("the real SubConn got %d Connect calls, want 1 (it was READY at the second)", n)
	}
	cc.sc(0).push(connectivity.Idle)
	waitFor(t, "the second holder hears later changes", func() bool {
		return slices.Equal(second.get(), []connectivity.State{connectivity.Ready, connectivity.Idle})
	})
}

// Acquire's own holders are told the current state at once, as before.
func TestAcquireHolderIsToldTheStateAtOnce(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	t.Cleanup(func() { m.Close(); cc.checkViolations(t) })
	a, err := m.Acquire(addr("10.0.0.1:1"), "a")
	if err != nil {
		t.Fatal(err)
	}
	a.Connect()
	cc.sc(0).push(connectivity.Ready)
	var r recorder
	if _, err := m.Acquire(addr("10.0.0.1:1"), "b", WithStateListener(r.listen)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b told READY", func() bool { return slices.Equal(r.get(), []connectivity.State{connectivity.Ready}) })
}

// Serialize holds back what the manager's own goroutine delivers (here the
// state told at a holder's first Connect) until f returns.
func TestSerializeHoldsBackTheManagersDeliveries(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	t.Cleanup(func() { m.Close(); cc.checkViolations(t) })
	c := m.ClientConn(cc, "child")
	a, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: func(balancer.SubConnState) {}})
	if err != nil {
		t.Fatal(err)
	}
	a.Connect()
	cc.sc(0).push(connectivity.Ready)

	var r recorder
	var during []connectivity.State
	m.Serialize(func() {
		b, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: r.listen})
		if err != nil {
			t.Error(err)
			return
		}
		b.Connect()
		time.Sleep(50 * time.Millisecond)
		during = r.get()
	})
	if len(during) != 0 {
		t.Fatalf("the holder heard %v during Serialize", during)
	}
	waitFor(t, "READY after Serialize", func() bool { return slices.Equal(r.get(), []connectivity.State{connectivity.Ready}) })
}
