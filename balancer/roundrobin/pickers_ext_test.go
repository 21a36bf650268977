package roundrobin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// These tests count the pickers the policy sends and drive each SubConn's
// state by hand, which a real channel allows neither of: grpc keeps a
// policy's pickers to itself and a real SubConn's state follows its socket.
// So they run the policy on a fake balancer.ClientConn (fakeCC) whose
// SubConns change state when the test says so. Everything the policy runs
// on it is real: leakproof's manager and grpc's pick_first children.

const (
	pollTimeout = 5 * time.Second
	pollEvery   = time.Millisecond
	// closeTimeout bounds a Close that can only block on a lock a panicked
	// test still holds; a working Close returns in microseconds.
	closeTimeout = 10 * time.Second
)

type fakeCC struct {
	balancer.ClientConn // nil: a call that is not faked panics

	asyncShutdown bool // SubConn.Shutdown tells the listener from a goroutine

	mu      sync.Mutex
	scs     map[string]*fakeSC
	state   balancer.State
	pickers int
}

func newFakeCC() *fakeCC { return &fakeCC{scs: map[string]*fakeSC{}} }

func (f *fakeCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("fake: NewSubConn with %d addresses", len(addrs))
	}
	sc := &fakeSC{addr: addrs[0].Addr, listener: opts.StateListener, async: f.asyncShutdown}
	f.mu.Lock()
	f.scs[sc.addr] = sc
	f.mu.Unlock()
	return sc, nil
}

func (f *fakeCC) UpdateState(s balancer.State) {
	f.mu.Lock()
	f.state = s
	f.pickers++
	f.mu.Unlock()
}

func (f *fakeCC) ResolveNow(resolver.ResolveNowOptions) {}
func (f *fakeCC) Target() string                        { return "fake:///pickers" }
func (f *fakeCC) MetricsRecorder() estats.MetricsRecorder {
	return estats.UnimplementedMetricsRecorder{}
}

func (f *fakeCC) current() (balancer.State, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.pickers
}

// sc waits for the SubConn to addr to be created and connected.
func (f *fakeCC) sc(t *testing.T, addr string) *fakeSC {
	t.Helper()
	var sc *fakeSC
	poll(t, "SubConn to "+addr+" connecting", func() bool {
		f.mu.Lock()
		sc = f.scs[addr]
		f.mu.Unlock()
		return sc != nil && sc.connects.Load() > 0
	})
	return sc
}

type fakeSC struct {
	balancer.SubConn // nil: GetOrBuildProducer panics

	addr     string
	listener func(balancer.SubConnState)
	connects atomic.Int32
	async    bool

	mu     sync.Mutex
	health func(balancer.SubConnState)
}

func (sc *fakeSC) Connect() { sc.connects.Add(1) }
func (sc *fakeSC) Shutdown() {
	if sc.async {
		go sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Shutdown})
		return
	}
	sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Shutdown})
}
func (sc *fakeSC) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.mu.Lock()
	sc.health = l
	sc.mu.Unlock()
}

// set reports s, and for READY a healthy backend once pick_first listens.
func (sc *fakeSC) set(t *testing.T, s connectivity.State, err error) {
	t.Helper()
	sc.listener(balancer.SubConnState{ConnectivityState: s, ConnectionError: err})
	if s != connectivity.Ready {
		return
	}
	var h func(balancer.SubConnState)
	poll(t, "health listener on "+sc.addr, func() bool {
		sc.mu.Lock()
		h = sc.health
		sc.mu.Unlock()
		return h != nil
	})
	h(balancer.SubConnState{ConnectivityState: connectivity.Ready})
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollEvery)
	}
}

func endpoints(addrs ...string) resolver.State {
	var s resolver.State
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	return s
}

func addrs(prefix string, n int) []string {
	as := make([]string, n)
	for i := range as {
		as[i] = fmt.Sprintf("%s-%d:443", prefix, i)
	}
	return as
}

// picked returns the backends n picks of the current picker reach.
func picked(t *testing.T, f *fakeCC, n int) map[string]int {
	t.Helper()
	s, _ := f.current()
	got := map[string]int{}
	for range n {
		res, err := s.Picker.Pick(balancer.PickInfo{})
		if err != nil {
			t.Fatalf("Pick on a %v picker: %v", s.ConnectivityState, err)
		}
		got[res.SubConn.(*fakeSC).addr]++
	}
	return got
}

func build(t *testing.T) (balancer.Balancer, *fakeCC) {
	t.Helper()
	return buildPolicy(t, roundrobin.Name)
}

// buildPolicy builds the registered policy name on a fakeCC, closed when the
// test ends. grpc's pick_first (under grpc's round_robin) holds its lock
// while it shuts a SubConn down and takes it again in the SubConn's
// listener: a real SubConn tells the listener later, so for grpc's policy
// the fake does too.
func buildPolicy(t *testing.T, name string) (balancer.Balancer, *fakeCC) {
	t.Helper()
	f := newFakeCC()
	f.asyncShutdown = name != roundrobin.Name
	b := balancer.Get(name).Build(f, balancer.BuildOptions{})
	t.Cleanup(func() {
		// A test that panics with the balancer's lock held runs this
		// cleanup before the panic ends the process: a Close that cannot
		// take the lock must not hold the panic back until the binary's
		// timeout.
		done := make(chan struct{})
		go func() { b.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeTimeout):
			t.Errorf("Close did not return in %v", closeTimeout)
		}
	})
	return b, f
}

// startCoalesced builds leakproof_round_robin with coalescePickers and gives
// it one endpoint per address.
func startCoalesced(t *testing.T, as []string) (balancer.Balancer, *fakeCC) {
	t.Helper()
	b, f := build(t)
	cfg, err := balancer.Get(roundrobin.Name).(balancer.ConfigParser).ParseConfig(json.RawMessage(`{"coalescePickers":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as...), BalancerConfig: cfg}); err != nil {
		t.Fatal(err)
	}
	return b, f
}

// TestEndpointsTurningReadySendOnePickerEach: a resolver update of 100
// endpoints sends one picker, and each endpoint turning READY afterwards
// one more, as grpc's endpointsharding does (a parent waits for it); every
// READY picker is a view of the READY set, so each costs O(1), not a
// rebuild, and it spreads picks evenly over every READY endpoint at once.
func TestEndpointsTurningReadySendOnePickerEach(t *testing.T) {
	b, f := build(t)
	as := addrs("a", 100)
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as...)}); err != nil {
		t.Fatal(err)
	}
	s, n := f.current()
	if n != 1 || s.ConnectivityState != connectivity.Connecting {
		t.Fatalf("after the update: %d pickers, state %v; want 1, CONNECTING", n, s.ConnectivityState)
	}
	for i, a := range as {
		f.sc(t, a).set(t, connectivity.Ready, nil)
		// Every endpoint READY so far is picked, with no new picker.
		want := i + 1
		poll(t, fmt.Sprintf("%d READY endpoints picked", want), func() bool {
			return len(picked(t, f, want)) == want
		})
	}
	if _, n := f.current(); n != 1+len(as) {
		t.Errorf("%d pickers for the update and 100 endpoints turning READY, want %d (one each)", n, 1+len(as))
	}
	for a, k := range picked(t, f, 300) {
		if k != 3 {
			t.Errorf("%s picked %d times in 300 picks over 100 endpoints, want 3", a, k)
		}
	}
}

// TestCoalescePickers: with coalescePickers, a resolver update of 100
// endpoints and all of them turning READY send two pickers, not 101:
// the update's (CONNECTING), the first READY endpoint's (the aggregate
// state changed), and none after it, because the READY picker sees each
// endpoint join at once. A READY endpoint that leaves sends one (RPCs that
// picked it wait for it); coming back sends none.
func TestCoalescePickers(t *testing.T) {
	as := addrs("e", 100)
	_, f := startCoalesced(t, as)
	for i, a := range as {
		f.sc(t, a).set(t, connectivity.Ready, nil)
		want := i + 1
		poll(t, fmt.Sprintf("%d READY endpoints picked", want), func() bool {
			s, _ := f.current()
			return s.ConnectivityState == connectivity.Ready && len(picked(t, f, want)) == want
		})
	}
	if _, n := f.current(); n != 2 {
		t.Fatalf("%d pickers for the update and 100 endpoints turning READY, want 2", n)
	}
	lost := f.sc(t, as[7])
	lost.set(t, connectivity.Idle, nil)
	poll(t, "a picker without "+as[7], func() bool { _, n := f.current(); return n == 3 })
	if got := picked(t, f, 99*3); got[as[7]] != 0 || len(got) != 99 {
		t.Fatalf("picks reach %d endpoints (%s %d times) after it went IDLE, want the other 99", len(got), as[7], got[as[7]])
	}
	poll(t, "reconnect of "+as[7], func() bool { return lost.connects.Load() >= 2 })
	lost.set(t, connectivity.Connecting, nil)
	lost.set(t, connectivity.Ready, nil)
	poll(t, as[7]+" picked again", func() bool { return len(picked(t, f, 100)) == 100 })
	if _, n := f.current(); n != 3 {
		t.Errorf("%d pickers after the endpoint came back, want still 3", n)
	}
}

// TestReadyEndpointLeavingSendsAPicker: a READY endpoint that loses its
// connection leaves the picker at once, with a new picker (RPCs that picked
// it wait for one), and comes back with one picker per transition, as
// grpc's endpointsharding sends.
func TestReadyEndpointLeavingSendsAPicker(t *testing.T) {
	b, f := build(t)
	as := addrs("b", 3)
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as...)}); err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		f.sc(t, a).set(t, connectivity.Ready, nil)
	}
	poll(t, "3 READY endpoints picked", func() bool { return len(picked(t, f, 3)) == 3 })
	_, before := f.current()

	lost := f.sc(t, as[1])
	lost.set(t, connectivity.Idle, nil) // the connection went away
	poll(t, "a picker without "+as[1], func() bool {
		_, n := f.current()
		return n > before
	})
	if got := picked(t, f, 30); got[as[1]] != 0 || len(got) != 2 {
		t.Fatalf("picks %v after %s went IDLE, want only the other two", got, as[1])
	}
	// pick_first reconnects it (the fake counts Connect calls).
	poll(t, "reconnect of "+as[1], func() bool { return lost.connects.Load() >= 2 })
	_, n := f.current()
	lost.set(t, connectivity.Connecting, nil)
	lost.set(t, connectivity.Ready, nil)
	poll(t, as[1]+" picked again", func() bool { return picked(t, f, 3)[as[1]] == 1 })
	// pick_first reported CONNECTING itself when it reconnected, so the
	// fake's CONNECTING changes nothing: READY is the one transition.
	if _, m := f.current(); m != n+1 {
		t.Errorf("%d pickers sent when the endpoint turned READY again, want 1", m-n)
	}
}

// TestAggregateState follows endpointsharding's rules: READY if any is READY,
// else CONNECTING if any is connecting, else TRANSIENT_FAILURE with the
// endpoints' own errors.
func TestAggregateState(t *testing.T) {
	b, f := build(t)
	as := addrs("c", 2)
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as...)}); err != nil {
		t.Fatal(err)
	}
	x, y := f.sc(t, as[0]), f.sc(t, as[1])
	x.set(t, connectivity.Connecting, nil)
	y.set(t, connectivity.Connecting, nil)
	waitState := func(want connectivity.State) {
		t.Helper()
		poll(t, want.String(), func() bool { s, _ := f.current(); return s.ConnectivityState == want })
	}
	x.set(t, connectivity.TransientFailure, errors.New("x refused"))
	waitState(connectivity.Connecting)
	y.set(t, connectivity.Ready, nil)
	waitState(connectivity.Ready)
	y.set(t, connectivity.Idle, nil) // lost; pick_first reconnects
	poll(t, "reconnect", func() bool { return y.connects.Load() >= 2 })
	waitState(connectivity.Connecting)
	y.set(t, connectivity.Connecting, nil)
	y.set(t, connectivity.TransientFailure, errors.New("y refused"))
	waitState(connectivity.TransientFailure)
	s, _ := f.current()
	seen := map[string]bool{}
	for range 4 {
		_, err := s.Picker.Pick(balancer.PickInfo{})
		if err == nil {
			t.Fatal("a TRANSIENT_FAILURE picker picked")
		}
		seen[err.Error()] = true
	}
	if len(seen) != 2 {
		t.Errorf("TRANSIENT_FAILURE picks failed with %v, want each endpoint's own error", seen)
	}
}

// TestPicksRaceUpdates picks from many goroutines while endpoints turn READY,
// leave and are removed: run with -race, it checks that the READY picker
// reads what the balancer changes safely, and that every pick returns a
// SubConn or ErrNoSubConnAvailable.
func TestPicksRaceUpdates(t *testing.T) {
	b, f := build(t)
	as := addrs("d", 40)
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as...)}); err != nil {
		t.Fatal(err)
	}
	f.sc(t, as[0]).set(t, connectivity.Ready, nil)
	poll(t, "READY", func() bool { s, _ := f.current(); return s.ConnectivityState == connectivity.Ready })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, _ := f.current()
				res, err := s.Picker.Pick(balancer.PickInfo{})
				if err == nil && res.SubConn == nil || err != nil && !errors.Is(err, balancer.ErrNoSubConnAvailable) && s.ConnectivityState == connectivity.Ready {
					bad.Store(fmt.Sprintf("Pick = %v, %v", res, err))
				}
			}
		}()
	}
	for _, a := range as[1:] {
		f.sc(t, a).set(t, connectivity.Ready, nil)
	}
	for _, a := range as[10:20] {
		f.sc(t, a).set(t, connectivity.Idle, nil)
	}
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints(as[:30]...)}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	got := picked(t, f, 200)
	for i, a := range as {
		if gone := i >= 10 && i < 20 || i >= 30; gone && got[a] != 0 {
			t.Errorf("%s picked after it went IDLE or was removed", a)
		}
	}
	if len(got) != 20 {
		t.Errorf("picks reach %d endpoints, want the 20 still READY", len(got))
	}
}

// TestEndpointsSharingAFirstAddressAreTwoEndpoints: {A,B} and {A,C} are two
// endpoints (keyed by all their addresses), both READY on A: picks spread
// per endpoint, as grpc's round_robin does, so A gets two shares of three.
func TestEndpointsSharingAFirstAddressAreTwoEndpoints(t *testing.T) {
	b, f := build(t)
	var s resolver.State
	for _, as := range [][]string{{"f-a:1", "f-b:1"}, {"f-a:1", "f-c:1"}, {"f-d:1"}} {
		var ep resolver.Endpoint
		for _, a := range as {
			ep.Addresses = append(ep.Addresses, resolver.Address{Addr: a})
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: s}); err != nil {
		t.Fatal(err)
	}
	f.sc(t, "f-a:1").set(t, connectivity.Ready, nil)
	f.sc(t, "f-d:1").set(t, connectivity.Ready, nil)
	poll(t, "both backends picked", func() bool { return len(picked(t, f, 3)) == 2 })
	if got := picked(t, f, 300); got["f-a:1"] != 200 || got["f-d:1"] != 100 {
		t.Fatalf("picks %v, want f-a:1 200 and f-d:1 100 (two endpoints on it, one on the other)", got)
	}
}

// TestUnchangedUpdateRestartsAConnectingEndpoint: grpc's endpointsharding
// hands every update to every child, and pick_first, when CONNECTING,
// restarts its pass from the first address even if the addresses did not
// change. leakproof_round_robin skips children an unchanged update cannot
// affect (READY, IDLE), never a CONNECTING one: its first address, failed
// and back to IDLE while the second connects, is connected again at once.
func TestUnchangedUpdateRestartsAConnectingEndpoint(t *testing.T) {
	b, f := build(t)
	state := resolver.State{Endpoints: []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: "g-a:1"}, {Addr: "g-b:1"}}}}}
	update := func() {
		t.Helper()
		if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: state}); err != nil {
			t.Fatal(err)
		}
	}
	update()
	a := f.sc(t, "g-a:1")
	a.set(t, connectivity.Connecting, nil)
	a.set(t, connectivity.TransientFailure, errors.New("g-a refused"))
	bb := f.sc(t, "g-b:1") // pick_first moved on to the second address
	bb.set(t, connectivity.Connecting, nil)
	a.set(t, connectivity.Idle, nil) // its backoff is over; pick_first waits for g-b
	if s, _ := f.current(); s.ConnectivityState != connectivity.Connecting {
		t.Fatalf("state %v, want CONNECTING", s.ConnectivityState)
	}
	if n := a.connects.Load(); n != 1 {
		t.Fatalf("g-a connected %d times before the update, want 1", n)
	}

	update() // the same addresses
	poll(t, "g-a connected again (pick_first's pass restarted)", func() bool { return a.connects.Load() == 2 })
}

// TestAnEndpointWithoutAddressesChangesNothingElse: an update whose
// endpoints include one with no address is accepted and the other endpoints
// are served, exactly as grpc's round_robin does (its pick_first child gets
// one endpoint, so it returns no error, and waits, CONNECTING, for an
// address).
func TestAnEndpointWithoutAddressesChangesNothingElse(t *testing.T) {
	for _, name := range []string{roundrobin.Name, "round_robin"} {
		t.Run(name, func(t *testing.T) {
			b, f := buildPolicy(t, name)
			good := endpoints("h-a:1")
			withEmpty := resolver.State{Endpoints: append([]resolver.Endpoint{{}}, good.Endpoints...)}
			if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: withEmpty}); err != nil {
				t.Fatalf("an endpoint without addresses beside a good one: UpdateClientConnState = %v, want nil", err)
			}
			f.sc(t, "h-a:1").set(t, connectivity.Ready, nil)
			poll(t, "h-a served", func() bool { s, _ := f.current(); return s.ConnectivityState == connectivity.Ready })
			if got := picked(t, f, 4); got["h-a:1"] != 4 {
				t.Fatalf("picks %v, want h-a:1 4", got)
			}
			if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: good}); err != nil {
				t.Fatalf("the next update: %v", err)
			}
		})
	}
}

// TestCoalescePickersSendsOneWhenAReadyEndpointFails: with coalescePickers
// the only transition inside a READY balancer that gets a picker is an
// endpoint leaving the READY set, since an RPC that picked it waits for the
// next one. A READY endpoint that fails its health check goes to
// TRANSIENT_FAILURE and stays there: nothing else would send that picker.
func TestCoalescePickersSendsOneWhenAReadyEndpointFails(t *testing.T) {
	as := addrs("k", 3)
	_, f := startCoalesced(t, as)
	for _, a := range as {
		f.sc(t, a).set(t, connectivity.Ready, nil)
	}
	poll(t, "3 READY endpoints picked", func() bool {
		s, _ := f.current()
		return s.ConnectivityState == connectivity.Ready && len(picked(t, f, 3)) == 3
	})
	_, before := f.current()
	sick := f.sc(t, as[1])
	sick.mu.Lock()
	health := sick.health
	sick.mu.Unlock()
	health(balancer.SubConnState{ConnectivityState: connectivity.TransientFailure, ConnectionError: errors.New("unhealthy")})
	poll(t, "a picker after "+as[1]+" failed its health check", func() bool { _, n := f.current(); return n == before+1 })
	if got := picked(t, f, 30); got[as[1]] != 0 || len(got) != 2 {
		t.Fatalf("picks %v after %s turned unhealthy, want the other two only", got, as[1])
	}
}

// TestUnchangedUpdateRestartsAFailingEndpoint: in TRANSIENT_FAILURE, pick_first
// restarts its pass on every update, unchanged or not, and a pass that ends
// in failure reports TRANSIENT_FAILURE again, which the balancer passes on
// as a new picker. Without the update, pick_first, between passes, reports
// only after every address failed once more. So the unchanged update must
// reach a failing endpoint, as grpc's endpointsharding delivers it.
func TestUnchangedUpdateRestartsAFailingEndpoint(t *testing.T) {
	b, f := build(t)
	state := resolver.State{Endpoints: []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: "m-a:1"}, {Addr: "m-b:1"}}}}}
	update := func() {
		t.Helper()
		if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: state}); err != nil {
			t.Fatal(err)
		}
	}
	update()
	a := f.sc(t, "m-a:1")
	a.set(t, connectivity.Connecting, nil)
	a.set(t, connectivity.TransientFailure, errors.New("m-a refused"))
	bb := f.sc(t, "m-b:1")
	bb.set(t, connectivity.Connecting, nil)
	bb.set(t, connectivity.TransientFailure, errors.New("m-b refused"))
	poll(t, "TRANSIENT_FAILURE", func() bool { s, _ := f.current(); return s.ConnectivityState == connectivity.TransientFailure })
	a.set(t, connectivity.Idle, nil) // backoff over: pick_first reconnects it
	poll(t, "m-a reconnecting", func() bool { return a.connects.Load() == 2 })
	a.set(t, connectivity.Connecting, nil)

	update() // the same addresses: pick_first starts a new pass
	_, n := f.current()
	a.set(t, connectivity.TransientFailure, errors.New("m-a refused again"))
	poll(t, "a picker for the pass that failed", func() bool { _, m := f.current(); return m == n+1 })
}

// TestDuplicateEndpointsAreOne: an endpoint listed twice in an update is one
// endpoint (one SubConn, one share of the picks), as grpc's round_robin
// skips duplicates; and a duplicate does not hide an endpoint the update
// removed.
func TestDuplicateEndpointsAreOne(t *testing.T) {
	for _, name := range []string{roundrobin.Name, "round_robin"} {
		t.Run(name, func(t *testing.T) {
			b, f := buildPolicy(t, name)
			if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints("n-a:1", "n-a:1", "n-b:1", "n-c:1", "n-a:1")}); err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"n-a:1", "n-b:1", "n-c:1"} {
				f.sc(t, a).set(t, connectivity.Ready, nil)
			}
			poll(t, "all three picked", func() bool { return len(picked(t, f, 3)) == 3 })
			if got := picked(t, f, 300); got["n-a:1"] != 100 || got["n-b:1"] != 100 || got["n-c:1"] != 100 {
				t.Fatalf("picks %v, want 100 each: the duplicates are one endpoint", got)
			}
			if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints("n-a:1", "n-b:1", "n-a:1")}); err != nil {
				t.Fatal(err)
			}
			poll(t, "n-c removed", func() bool { return len(picked(t, f, 4)) == 2 })
			if got := picked(t, f, 200); got["n-a:1"] != 100 || got["n-b:1"] != 100 {
				t.Fatalf("picks %v after n-c was removed, want 100 each for n-a and n-b", got)
			}
		})
	}
}

// TestResolverErrorReachesFailingEndpoints: a resolver error after a good
// update reaches every endpoint; pick_first ignores it while it has
// addresses and is not failing, and a failing one fails its picks with the
// resolver's error from then on, as under grpc's round_robin.
func TestResolverErrorReachesFailingEndpoints(t *testing.T) {
	for _, name := range []string{roundrobin.Name, "round_robin"} {
		t.Run(name, func(t *testing.T) {
			b, f := buildPolicy(t, name)
			if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: endpoints("p-a:1", "p-b:1")}); err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"p-a:1", "p-b:1"} {
				sc := f.sc(t, a)
				sc.set(t, connectivity.Connecting, nil)
				sc.set(t, connectivity.TransientFailure, errors.New(a+" refused"))
			}
			poll(t, "TRANSIENT_FAILURE", func() bool { s, _ := f.current(); return s.ConnectivityState == connectivity.TransientFailure })
			b.ResolverError(errors.New("dns: no such host"))
			poll(t, "picks failing with the resolver's error", func() bool {
				s, _ := f.current()
				for range 4 {
					if _, err := s.Picker.Pick(balancer.PickInfo{}); err == nil || !strings.Contains(err.Error(), "dns: no such host") {
						return false
					}
				}
				return true
			})
		})
	}
}
