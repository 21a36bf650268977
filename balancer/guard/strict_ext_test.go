package guard_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// strictName is a test policy that relies on grpc's guarantees to the
// letter, as policies may: it takes no lock, because grpc calls its
// balancer methods and its SubConns' StateListeners one at a time, and
// checks that no StateListener runs before Connect was called on its
// SubConn ("will never be invoked until after Connect() is called") or
// during one of its own balancer calls. It makes one SubConn per address
// entry, repeats included, and connects the first at once, the others
// from its third update on; each update that connects one lingers a
// little, for a listener that would run during it to show.
const strictName = "leakproof_test_strict"

func init() { balancer.Register(strictBuilder{}) }

type strictBuilder struct{}

func (strictBuilder) Name() string { return strictName }

func (strictBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	b := &strict{cc: cc}
	strictBuilt.Store(b)
	return b
}

var strictBuilt atomic.Pointer[strict]

type strict struct {
	cc balancer.ClientConn

	// No lock: grpc serializes every call below.
	scs       []*strictSC
	updates   int
	inCall    atomic.Bool  // also read by listeners, to catch one running during a call
	exitIdles atomic.Int32 // ExitIdle calls
	closes    atomic.Int32 // Close calls

	// What the test reads.
	obs          sync.Mutex
	violations   []string
	resolverErrs []string                     // ResolverError calls, their errors
	states       map[int][]connectivity.State // by SubConn index
}

type strictSC struct {
	i         int
	sc        balancer.SubConn
	connected bool
	state     connectivity.State
}

func (b *strict) violate(format string, args ...any) {
	b.obs.Lock()
	b.violations = append(b.violations, fmt.Sprintf(format, args...))
	b.obs.Unlock()
}

func (b *strict) UpdateClientConnState(s balancer.ClientConnState) error {
	b.inCall.Store(true)
	defer b.inCall.Store(false)
	b.updates++
	for i := len(b.scs); i < len(s.ResolverState.Addresses); i++ {
		x := &strictSC{i: i}
		sc, err := b.cc.NewSubConn([]resolver.Address{{Addr: s.ResolverState.Addresses[i].Addr}},
			balancer.NewSubConnOptions{StateListener: func(st balancer.SubConnState) { b.listen(x, st) }})
		if err != nil {
			return err
		}
		x.sc = sc
		b.scs = append(b.scs, x)
	}
	lingered := false
	for _, x := range b.scs {
		if !x.connected && (x.i == 0 || b.updates >= 3) {
			x.connected = true
			x.sc.Connect()
			lingered = true
		}
	}
	if lingered || b.updates == 2 {
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (b *strict) listen(x *strictSC, st balancer.SubConnState) {
	if b.inCall.Load() {
		b.violate("SubConn %d: listener got %v during a balancer call", x.i, st.ConnectivityState)
	}
	if x.sc == nil || !x.connected {
		b.violate("SubConn %d: listener got %v before Connect", x.i, st.ConnectivityState)
	}
	b.obs.Lock()
	if b.states == nil {
		b.states = map[int][]connectivity.State{}
	}
	b.states[x.i] = append(b.states[x.i], st.ConnectivityState)
	b.obs.Unlock()
	x.state = st.ConnectivityState
	if x.state == connectivity.Idle && x.sc != nil {
		x.sc.Connect()
	}
	var ready []balancer.SubConn
	for _, y := range b.scs {
		if y.state == connectivity.Ready {
			ready = append(ready, y.sc)
		}
	}
	if len(ready) == 0 {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: base.NewErrPicker(balancer.ErrNoSubConnAvailable)})
		return
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &rrPicker{scs: ready}})
}

func (b *strict) seen() (violations []string, states map[int][]connectivity.State) {
	b.obs.Lock()
	defer b.obs.Unlock()
	states = map[int][]connectivity.State{}
	for i, s := range b.states {
		states[i] = append([]connectivity.State(nil), s...)
	}
	return append([]string(nil), b.violations...), states
}

func (b *strict) ResolverError(err error) {
	b.obs.Lock()
	b.resolverErrs = append(b.resolverErrs, err.Error())
	b.obs.Unlock()
}
func (b *strict) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}
func (b *strict) ExitIdle()                                                  { b.exitIdles.Add(1) }
func (b *strict) Close() {
	b.closes.Add(1)
	for _, x := range b.scs {
		x.sc.Shutdown()
	}
}

// TestStateListenerContractUnderTheGuard: grpc calls a StateListener only
// after Connect and never during a balancer call. Under the guard a second
// SubConn to a backend that is already READY shares its subchannel; its
// holder is told READY only once it calls Connect, and after the call that
// connected it has returned. The same policy runs alone first, to show it
// is a valid policy under grpc.
func TestStateListenerContractUnderTheGuard(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	a := bs[0].Addr()
	for _, tc := range []struct {
		name, sc string
		o        e2e.Options
	}{
		{"alone", e2e.ServiceConfig(strictName, ""), e2e.Options{NoDialer: true}},
		{"guarded", guarded(fmt.Sprintf(`{%q:{}}`, strictName), ""), e2e.Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := e2e.Dial(t, tc.sc, e2e.AddrState(a), tc.o)
			cl.WaitServed(a)
			child := strictBuilt.Load()

			// A second SubConn to a, not connected: it hears nothing.
			cl.R.UpdateState(e2e.AddrState(a, a))
			time.Sleep(400 * time.Millisecond)
			if v, states := child.seen(); len(v) != 0 || len(states[1]) != 0 {
				t.Fatalf("before SubConn 1's Connect: violations %q, its states %v", v, states[1])
			}
			// Connected: it hears READY (shared) or CONNECTING, READY (alone).
			cl.R.UpdateState(e2e.AddrState(a, a))
			deadline := time.Now().Add(e2e.LongTimeout)
			for {
				_, states := child.seen()
				if s := states[1]; len(s) > 0 && s[len(s)-1] == connectivity.Ready {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("SubConn 1 never reported READY after Connect: %v", states[1])
				}
				time.Sleep(5 * time.Millisecond)
			}
			cl.WaitServed(a)
			cl.CC.Close()
			e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
			if v, _ := child.seen(); len(v) != 0 {
				t.Errorf("violations of grpc's StateListener contract: %q", v)
			}
		})
	}
}

// parentCC is a ClientConn for a guard built by hand: it takes UpdateState
// and nothing else.
type parentCC struct{ balancer.ClientConn }

func (parentCC) UpdateState(balancer.State) {}
func (parentCC) MetricsRecorder() estats.MetricsRecorder {
	return estats.UnimplementedMetricsRecorder{}
}

// TestExitIdleReachesTheChild: the guard passes ExitIdle to its child (grpc
// calls it when an idle channel is used again) and resolver errors, closes the child once when
// it is closed (a second Close does nothing), and drops ExitIdle once closed.
func TestExitIdleReachesTheChild(t *testing.T) {
	bb := balancer.Get(guard.Name)
	cfg, err := bb.(balancer.ConfigParser).ParseConfig([]byte(fmt.Sprintf(`{"childPolicy":[{%q:{}}]}`, strictName)))
	if err != nil {
		t.Fatal(err)
	}
	g := bb.Build(parentCC{}, balancer.BuildOptions{})
	if err := g.UpdateClientConnState(balancer.ClientConnState{BalancerConfig: cfg}); err != nil {
		t.Fatal(err)
	}
	child := strictBuilt.Load()
	g.ExitIdle()
	if n := child.exitIdles.Load(); n != 1 {
		t.Fatalf("child got %d ExitIdle calls, want 1", n)
	}
	g.ResolverError(fmt.Errorf("dns: no such host"))
	child.obs.Lock()
	errs := slices.Clone(child.resolverErrs)
	child.obs.Unlock()
	if len(errs) != 1 || errs[0] != "dns: no such host" {
		t.Fatalf("child got ResolverError calls %q, want the one error", errs)
	}
	g.Close()
	g.Close()
	if n := child.closes.Load(); n != 1 {
		t.Fatalf("child closed %d times by two Close calls, want 1", n)
	}
	g.ExitIdle()
	if n := child.exitIdles.Load(); n != 1 {
		t.Fatalf("child got %d ExitIdle calls after Close, want still 1", n)
	}
}

// TestCloseBeforeAnyConfig: a guard grpc closes before it ever got a config
// (a channel closed while its first resolution is pending) has no child:
// ExitIdle, ResolverError and Close, twice, are no-ops.
func TestCloseBeforeAnyConfig(t *testing.T) {
	g := balancer.Get(guard.Name).Build(parentCC{}, balancer.BuildOptions{})
	g.ExitIdle()
	g.ResolverError(fmt.Errorf("no addresses yet"))
	g.Close()
	g.Close()
	g.ExitIdle()
}
