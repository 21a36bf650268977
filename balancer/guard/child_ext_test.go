package guard_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// freshName is a test policy with the other classic bug: on every resolver
// update it creates a fresh SubConn to every address and never shuts the
// old ones down (not even at Close).
const freshName = "leakproof_test_fresh_every_update"

// wrappedLeakyName is the leaky policy registered already guarded, by Wrap;
// wrappedLeakyDefaultName the same with WithOrphanTimeout(0), the default.
const (
	wrappedLeakyName        = "leakproof_test_wrapped_leaky"
	wrappedLeakyDefaultName = "leakproof_test_wrapped_leaky_default"
)

func init() {
	balancer.Register(freshBuilder{})
	balancer.Register(guard.Wrap(renamed{balancer.Get(leakzoo.ForgetRemoved), wrappedLeakyName},
		guard.WithOrphanTimeout(orphanTimeout), guard.WithDrainTimeout(drainTimeout)))
	balancer.Register(guard.Wrap(renamed{balancer.Get(leakzoo.ForgetRemoved), wrappedLeakyDefaultName},
		guard.WithOrphanTimeout(0), guard.WithDrainTimeout(drainTimeout)))
}

// renamed registers a builder under another name.
type renamed struct {
	balancer.Builder
	name string
}

func (r renamed) Name() string { return r.name }

type freshBuilder struct{}

func (freshBuilder) Name() string { return freshName }

func (freshBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	b := &fresh{cc: cc, ready: map[string]balancer.SubConn{}}
	freshBuilt.Store(b)
	return b
}

// freshBuilt is the last fresh balancer built, for the test to look at.
var freshBuilt atomic.Pointer[fresh]

type fresh struct {
	cc balancer.ClientConn

	mu      sync.Mutex
	all     []balancer.SubConn          // every SubConn it ever made
	ready   map[string]balancer.SubConn // the latest READY one per address
	atClose []bool                      // Released() of each SubConn when Close ran
}

func (b *fresh) UpdateClientConnState(s balancer.ClientConnState) error {
	for _, a := range s.ResolverState.Addresses {
		addr := a.Addr
		var sc balancer.SubConn
		// b.mu is held across NewSubConn and sc is read under it, as
		// grpc's pickfirst does. (Under the guard no listener runs before
		// Connect or during a balancer call: strict_ext_test.go.)
		b.mu.Lock()
		sc, err := b.cc.NewSubConn([]resolver.Address{{Addr: addr}}, balancer.NewSubConnOptions{
			StateListener: func(st balancer.SubConnState) {
				b.mu.Lock()
				sc := sc // assigned under b.mu below
				b.mu.Unlock()
				b.update(addr, sc, st)
			},
		})
		if err != nil {
			b.mu.Unlock()
			return err
		}
		b.all = append(b.all, sc)
		b.mu.Unlock()
		sc.Connect()
	}
	return nil
}

func (b *fresh) update(addr string, sc balancer.SubConn, st balancer.SubConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch st.ConnectivityState {
	case connectivity.Ready:
		b.ready[addr] = sc
	case connectivity.Idle:
		sc.Connect()
		fallthrough
	default:
		if b.ready[addr] == sc {
			delete(b.ready, addr)
		}
	}
	if len(b.ready) == 0 {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: base.NewErrPicker(balancer.ErrNoSubConnAvailable)})
		return
	}
	var scs []balancer.SubConn
	for _, sc := range b.ready {
		scs = append(scs, sc)
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &rrPicker{scs: scs}})
}

func (b *fresh) ResolverError(error)                                        {}
func (b *fresh) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}
func (b *fresh) ExitIdle()                                                  {}

// Close forgets everything, after noting whether the guard had already
// released any of its SubConns (it must not have: the child closes first).
func (b *fresh) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sc := range b.all {
		h, ok := sc.(*subconn.SubConn)
		b.atClose = append(b.atClose, ok && h.Released())
	}
}

type rrPicker struct {
	scs  []balancer.SubConn
	next atomic.Uint32
}

func (p *rrPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.scs[p.next.Add(1)%uint32(len(p.scs))]}, nil
}

// TestFreshSubConnOnEveryUpdateHoldsOneSocketPerBackend: alone, a child that
// makes a new SubConn per address on every resolver update opens a socket
// per update; under the guard every one of them shares the one subchannel
// per backend. At Close the child is closed first, then the manager releases
// what it still holds and reports each as a leak.
func TestFreshSubConnOnEveryUpdateHoldsOneSocketPerBackend(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	const updates = 4
	run := func(sc string, o e2e.Options) (*e2e.Client, map[string]int) {
		cl := e2e.Dial(t, sc, e2e.AddrState(a, b), o)
		cl.WaitServed(a, b)
		for range updates - 1 {
			cl.R.UpdateState(e2e.AddrState(a, b))
			cl.WaitServed(a, b)
		}
		return cl, e2e.MaxSockets(t, 300*time.Millisecond, a, b)
	}

	bare, max := run(e2e.ServiceConfig(freshName, ""), e2e.Options{NoDialer: true})
	if max[a] != updates || max[b] != updates {
		t.Errorf("alone: sockets %v, want %d to each backend (one per update)", max, updates)
	}
	bare.CC.Close()

	cl, max := run(guarded(fmt.Sprintf(`{%q:{}}`, freshName), ""), e2e.Options{})
	if max[a] != 1 || max[b] != 1 {
		t.Errorf("guarded: sockets %v, want 1 to each backend", max)
	}
	child := freshBuilt.Load()
	cl.CC.Close()
	for _, addr := range []string{a, b} {
		e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
	}
	child.mu.Lock()
	atClose, made := child.atClose, len(child.all)
	child.mu.Unlock()
	if len(atClose) != 2*updates || made != 2*updates {
		t.Fatalf("the child made %d SubConns and saw %d at Close, want %d", made, len(atClose), 2*updates)
	}
	for i, released := range atClose {
		if released {
			t.Fatalf("SubConn %d was released before the child's Close ran", i)
		}
	}
	leaks := cl.Trace.Count(trace.KindLeak, "")
	if leaks != 2*updates {
		t.Errorf("%d leak events at Close, want %d (every SubConn the child never shut down)", leaks, 2*updates)
	}
	ev := cl.Trace.Events()
	rep := trace.Check(ev)
	if rep.Destroyed != 2 || rep.Live != 0 || len(rep.Problems) != 2*updates {
		t.Errorf("trace: %d destroyed, %d live, %d problems (want 2, 0, %d holder leaks)", rep.Destroyed, rep.Live, len(rep.Problems), 2*updates)
	}
	for _, p := range rep.Problems {
		if p.Kind != trace.ProblemHolderLeak {
			t.Errorf("unexpected problem %v", p)
		}
	}
}

// dialServed starts two backends, a and c, and a channel on policy that
// both have served, under a leak check registered first (so it runs last).
func dialServed(t *testing.T, policy string) (cl *e2e.Client, a, c string) {
	t.Helper()
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, c = bs[0].Addr(), bs[1].Addr()
	cl = e2e.Dial(t, e2e.ServiceConfig(policy, ""), e2e.AddrState(a, c), e2e.Options{})
	cl.WaitServed(a, c)
	return cl, a, c
}

// TestWrapRegistersAGuardedPolicy names the leaky policy registered through
// Wrap, under its own name, with no leakproof_guard in the config.
func TestWrapRegistersAGuardedPolicy(t *testing.T) {
	cl, a, c := dialServed(t, wrappedLeakyName)
	if cl.Trace.Count(trace.KindCreate, "") != 2 {
		t.Fatalf("the wrapped policy's SubConns are not in the trace:\n%s", e2e.Format(cl.Trace.Events()))
	}
	cl.R.UpdateState(e2e.AddrState(a))
	e2e.WaitSockets(t, c, 0, removalBound)
	if n := cl.Trace.Count(trace.KindOrphan, c); n != 1 {
		t.Fatalf("%d orphan events for the removed backend, want 1", n)
	}
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}

// TestWrapZeroOrphanTimeoutIsTheDefault: WithOrphanTimeout(0) means the
// default (30s), not "reclaim at once": the leaky policy's subchannel to a
// removed backend is still open, and no orphan, well after the removal.
func TestWrapZeroOrphanTimeoutIsTheDefault(t *testing.T) {
	cl, a, c := dialServed(t, wrappedLeakyDefaultName)
	cl.R.UpdateState(e2e.AddrState(a))
	time.Sleep(3 * orphanTimeout) // three times what wrappedLeakyName is reclaimed after
	if n := cl.Trace.Count(trace.KindOrphan, c); n != 0 {
		t.Fatalf("%d orphan events for the removed backend %v after the removal, want 0 (the default timeout is %v)",
			n, 3*orphanTimeout, subconn.DefaultOrphanTimeout)
	}
	if n := e2e.Sockets(t, c); n != 1 {
		t.Fatalf("%d sockets to the removed backend, want 1 (the leaky policy holds it until the orphan timeout)", n)
	}
	cl.CC.Close()
}

// TestSwitchingChildPolicyKeepsTheConnections changes the guard's child from
// round_robin to least_request_experimental: the new child acquires the
// subchannels the old one holds before the old one closes, so no backend is
// dialed again.
func TestSwitchingChildPolicyKeepsTheConnections(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	cl := e2e.Dial(t, guarded(`{"round_robin":{}}`, ""), e2e.AddrState(a, b), e2e.Options{})
	cl.WaitServed(a, b)
	opened := cl.Trace.Count(trace.KindSocketOpen, "")
	sc := cl.R.CC().ParseServiceConfig(guarded(`{"least_request_experimental":{}}`, ""))
	if sc.Err != nil {
		t.Fatal(sc.Err)
	}
	st := e2e.AddrState(a, b)
	st.ServiceConfig = sc
	cl.R.UpdateState(st)
	cl.Trace.WaitFor(t, "round_robin's references dropped", func(ev []trace.Event) bool {
		n := 0
		for _, e := range ev {
			if e.Kind == trace.KindUnref && e.Holder == "round_robin" {
				n++
			}
		}
		return n == 2
	})
	cl.WaitServed(a, b)
	if n := cl.Trace.Count(trace.KindSocketOpen, ""); n != opened {
		t.Errorf("%d sockets opened after the switch, want none", n-opened)
	}
	if n := cl.Trace.Count(trace.KindShutdown, ""); n != 0 {
		t.Errorf("%d subchannels shut down by the switch, want 0", n)
	}
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}
