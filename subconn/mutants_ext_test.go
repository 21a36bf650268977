package subconn_test

// Tests that close gaps mutation testing (scripts/mutation.sh) found: each
// names the behaviour a surviving mutant broke without any test noticing.
// They run real grpc ClientConns against real backends on 127.0.0.1.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// probePolicy owns a manager and hands the test the manager and grpc's real
// ClientConn, so that a test can drive the manager (Acquire, the child
// ClientConn) on a real channel. With "pickFirst" it also runs grpc's
// pick_first on the manager, so RPCs flow; "drainTimeout" sets the manager's
// drain timeout through SetDrainTimeout, where "0s" (no bound) is allowed,
// unlike in the policies' configs.
const probePolicy = "subconn_test_probe"

type probeConfig struct {
	serviceconfig.LoadBalancingConfig
	PickFirst    bool   `json:"pickFirst"`
	DrainTimeout string `json:"drainTimeout"`
}

type probeBuilder struct{}

func (probeBuilder) Name() string { return probePolicy }

func (probeBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := &probeConfig{}
	if err := json.Unmarshal(js, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (probeBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	target := opts.Target.String()
	b := &probe{M: subconn.NewManager(cc, subconn.WithTarget(target)), CC: cc, opts: opts, target: target}
	probes.Store(target, b)
	return b
}

// probes holds the probe of each channel by target.
var probes sync.Map

type probe struct {
	M  *subconn.Manager
	CC balancer.ClientConn // grpc's own

	opts   balancer.BuildOptions
	target string
	mu     sync.Mutex
	child  balancer.Balancer
}

func (b *probe) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, _ := s.BalancerConfig.(*probeConfig)
	if cfg == nil {
		return nil
	}
	if cfg.DrainTimeout != "" {
		d, err := time.ParseDuration(cfg.DrainTimeout)
		if err != nil {
			return err
		}
		b.M.SetDrainTimeout(d)
	}
	if !cfg.PickFirst {
		return nil
	}
	b.mu.Lock()
	if b.child == nil {
		b.child = balancer.Get(grpcpickfirst.Name).Build(b.M.ClientConn(b.CC, "pick_first"), b.opts)
	}
	child := b.child
	b.mu.Unlock()
	return child.UpdateClientConnState(balancer.ClientConnState{ResolverState: s.ResolverState})
}

func (b *probe) ResolverError(err error) {
	if c := b.getChild(); c != nil {
		c.ResolverError(err)
	}
}

func (b *probe) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *probe) ExitIdle() {
	if c := b.getChild(); c != nil {
		c.ExitIdle()
	}
}

func (b *probe) Close() {
	if c := b.getChild(); c != nil {
		c.Close()
	}
	b.M.Close()
	probes.Delete(b.target)
}

func (b *probe) getChild() balancer.Balancer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.child
}

func init() { balancer.Register(probeBuilder{}) }

// probeOf returns the probe of c's channel once grpc has built it.
func probeOf(t *testing.T, c *e2e.Client) *probe {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		if b, ok := probes.Load(c.Target); ok {
			return b.(*probe)
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe policy was never built")
		}
		time.Sleep(time.Millisecond)
	}
}

// stateWaiter is a StateListener whose states a test can wait for.
type stateWaiter struct {
	mu     sync.Mutex
	states []connectivity.State
}

func (w *stateWaiter) listen(s balancer.SubConnState) {
	w.mu.Lock()
	w.states = append(w.states, s.ConnectivityState)
	w.mu.Unlock()
}

func (w *stateWaiter) waitFor(t *testing.T, want connectivity.State, nth int) {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		w.mu.Lock()
		n := 0
		for _, s := range w.states {
			if s == want {
				n++
			}
		}
		states := fmt.Sprint(w.states)
		w.mu.Unlock()
		if n >= nth {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v (#%d) never came; states %s", want, nth, states)
		}
		time.Sleep(time.Millisecond)
	}
}

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

// TestZeroDrainTimeoutNeverForceCloses: a drain timeout of 0 means grpc's
// own behaviour, no bound: a removed backend's socket stays open while a
// stream on it lives, and closes when the stream ends.
func TestZeroDrainTimeoutNeverForceCloses(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(probePolicy, `{"pickFirst":true,"drainTimeout":"0s"}`), e2e.AddrState(a), e2e.Options{})
	c.WaitServed(a)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold, err := c.Echo.Hold(ctx, &echov1.HoldRequest{Label: "long"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(); err != nil {
		t.Fatal(err)
	}
	c.R.UpdateState(e2e.AddrState(b))
	c.Trace.WaitFor(t, "shutdown of the removed backend", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindShutdown, a) == 1
	})
	// Long enough for any timer the manager might have started to fire.
	time.Sleep(300 * time.Millisecond)
	if n := e2e.Sockets(t, a); n != 1 {
		t.Fatalf("%d sockets to the removed backend with its stream open and no drain bound, want 1", n)
	}
	if n := c.Trace.Count(trace.KindDrainTimeout, ""); n != 0 {
		t.Fatalf("%d drain_timeout events with the drain timeout disabled\n%s", n, e2e.Format(c.Trace.Events()))
	}

	cancel() // the stream ends: grpc closes the socket, the manager destroys
	c.Trace.WaitFor(t, "destroy once the stream ended", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindDestroy, a) == 1
	})
	e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	c.CC.Close()
	c.Trace.CheckClean(t)
}

// TestAutoReconnectEndsWithTheHolderThatAskedForIt: WithAutoReconnect lasts
// as long as the reference that asked for it. While that holder holds the
// subchannel, the manager reconnects it after each GOAWAY; once it has
// released, the remaining holder (which did not ask) finds it IDLE.
func TestAutoReconnectEndsWithTheHolderThatAskedForIt(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      200 * time.Millisecond,
		MaxConnectionAgeGrace: 50 * time.Millisecond,
	}))
	a := bs[0].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(probePolicy, ""), e2e.AddrState(a), e2e.Options{})
	p := probeOf(t, c)

	var auto, plain stateWaiter
	ha, err := p.M.Acquire(resolver.Address{Addr: a}, "auto", subconn.WithAutoReconnect(), subconn.WithStateListener(auto.listen))
	if err != nil {
		t.Fatal(err)
	}
	hp, err := p.M.Acquire(resolver.Address{Addr: a}, "plain", subconn.WithStateListener(plain.listen))
	if err != nil {
		t.Fatal(err)
	}
	ha.Connect()
	// The first GOAWAY is followed by the manager's own Connect.
	ev := c.Trace.WaitFor(t, "an auto-reconnect after a GOAWAY", func(ev []trace.Event) bool {
		return len(eventsWith(ev, trace.KindConnect, "auto-reconnect")) > 0
	})
	if n := len(eventsWith(ev, trace.KindGoAway, "")); n < 1 {
		t.Fatalf("auto-reconnect without a GOAWAY before it\n%s", e2e.Format(ev))
	}
	plain.waitFor(t, connectivity.Ready, 2)

	if err := ha.Release("done"); err != nil {
		t.Fatal(err)
	}
	var released uint64
	for _, e := range c.Trace.Events() {
		if e.Kind == trace.KindUnref && e.Holder == "auto" {
			released = e.Seq
		}
	}
	after := func(ev []trace.Event, kind trace.Kind, prefix string) int {
		n := 0
		for _, e := range eventsWith(ev, kind, prefix) {
			if e.Seq > released {
				n++
			}
		}
		return n
	}
	// The subchannel was connecting or READY when the holder released (it
	// is never left IDLE while that holder holds it), so another GOAWAY
	// comes. The manager writes an auto-reconnect in the same critical
	// section as the goaway event: once the goaway is in the trace, so
	// would the reconnect be.
	ev = c.Trace.WaitFor(t, "a GOAWAY after the release", func(ev []trace.Event) bool {
		return after(ev, trace.KindGoAway, "") > 0
	})
	if n := after(ev, trace.KindConnect, "auto-reconnect"); n != 0 {
		t.Fatalf("%d auto-reconnect(s) after the holder that asked for it released\n%s", n, e2e.Format(ev))
	}
	var st string
	for _, info := range p.M.Snapshot() {
		if info.Key == hp.Key() {
			st = info.State
		}
	}
	if st != connectivity.Idle.String() {
		t.Fatalf("state after a GOAWAY with no auto-reconnect holder left: %q, want IDLE", st)
	}
	if err := hp.Release("done"); err != nil {
		t.Fatal(err)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}

// TestSocketsGaugeFallsWhenABackendIsRemoved: the open-sockets gauge counts
// sockets down as well as up while the channel lives.
func TestSocketsGaugeFallsWhenABackendIsRemoved(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	rec := &statsRecorder{counts: map[string]int64{}}
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(a, b),
		e2e.Options{DialOptions: []grpc.DialOption{grpc.WithStatsHandler(rec)}})
	c.WaitServed(a, b)
	// The up-down counters are recorded after the manager's lock is
	// released, so they are waited for rather than read once.
	rec.waitCount(t, subconn.MetricSubchannelsOpen, 2)
	rec.waitCount(t, subconn.MetricSocketsOpen, 2)
	c.R.UpdateState(e2e.AddrState(b))
	c.Trace.WaitFor(t, "destroy of the removed backend", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindDestroy, a) == 1
	})
	rec.waitCount(t, subconn.MetricSubchannelsOpen, 1)
	rec.waitCount(t, subconn.MetricSocketsOpen, 1)
	c.CC.Close()
	c.Trace.CheckClean(t)
}

// TestFailureReasonsCarryTheError: a TRANSIENT_FAILURE event says what
// failed (the dial or the handshake) and carries grpc's error with it.
func TestFailureReasonsCarryTheError(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	closed := refusingAddr(t)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(closed), e2e.Options{})
	var failure trace.Event
	c.Trace.WaitFor(t, "TRANSIENT_FAILURE", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindState && e.State == "TRANSIENT_FAILURE" {
				failure = e
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(failure.Reason, "from CONNECTING: connect failed: ") || !strings.Contains(failure.Reason, "connection refused") {
		t.Fatalf("reason %q, want the dial failure with grpc's error", failure.Reason)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}
