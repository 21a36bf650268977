package subconn

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// A holder that joins a subchannel in TRANSIENT_FAILURE is told the
// connection error with it, also when it is the subchannel's first state
// change; after a recovery, a holder that joins is told READY with no error.
func TestLateHolderGetsTheCurrentConnectionError(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	t.Cleanup(func() { m.Close(); cc.checkViolations(t) })
	if _, err := m.Acquire(addr("10.0.0.1:1"), "first"); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("connection refused")
	cc.sc(0).listener(balancer.SubConnState{ConnectivityState: connectivity.TransientFailure, ConnectionError: refused})

	got := make(chan balancer.SubConnState, 4)
	listen := func(s balancer.SubConnState) { got <- s }
	if _, err := m.Acquire(addr("10.0.0.1:1"), "second", WithStateListener(listen)); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.ConnectivityState != connectivity.TransientFailure || !errors.Is(s.ConnectionError, refused) {
		t.Fatalf("joined in TRANSIENT_FAILURE: told %v, error %v", s.ConnectivityState, s.ConnectionError)
	}
	cc.sc(0).push(connectivity.Ready)
	<-got // the second holder's own READY
	if _, err := m.Acquire(addr("10.0.0.1:1"), "third", WithStateListener(listen)); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.ConnectivityState != connectivity.Ready || s.ConnectionError != nil {
		t.Fatalf("joined READY after a failure: told %v, error %v; want READY and no error", s.ConnectivityState, s.ConnectionError)
	}
}

// A state update from grpc that arrives while the manager's goroutine is
// running a holder's listener is handed over, not left behind it: grpc's
// call returns once every holder has the update, without waiting out the
// handoff bound.
func TestStateUpdateTakesOverFromTheManagersGoroutine(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	t.Cleanup(func() { m.Close(); cc.checkViolations(t) })
	release := make(chan struct{})
	running := make(chan struct{})
	slow, err := m.Acquire(addr("10.0.0.1:1"), "slow", WithStateListener(func(s balancer.SubConnState) {
		if s.ConnectivityState == connectivity.Shutdown {
			close(running)
			<-release // a listener still busy when grpc's next update comes
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	var other recorder
	o, err := m.Acquire(addr("10.0.0.2:1"), "other", WithStateListener(other.listen))
	if err != nil {
		t.Fatal(err)
	}
	o.Connect()
	slow.Release("done") // its SHUTDOWN runs on the manager's goroutine
	<-running
	go func() { time.Sleep(100 * time.Millisecond); close(release) }()
	start := time.Now()
	cc.sc(1).push(connectivity.Connecting)
	took := time.Since(start)
	if got := other.get(); len(got) != 1 || got[0] != connectivity.Connecting {
		t.Fatalf("when grpc's call returned the other holder had %v, want [CONNECTING]", got)
	}
	if took >= handoffTimeout {
		t.Fatalf("grpc's call took %v: it waited out the handoff bound instead of taking over", took)
	}
}
