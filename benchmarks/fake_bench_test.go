package benchmarks

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// fakeCC is a balancer.ClientConn standing in for grpc's channel, so that a
// policy's picker and its handling of resolver updates can be timed without
// a network: grpc only hands pickers to its own ClientConn, so a policy's
// picker cannot be reached otherwise. Both grpc-go's policies and
// leakproof's are built on it through their registered builders, so each
// side runs its real code.
//
// Like grpc, it delivers SubConn state and health updates on one serializer
// goroutine, never on the caller's: a SubConn that is told to Connect goes
// CONNECTING and then READY at once (every backend is up), its health
// listener reports READY, and Shutdown delivers a final SHUTDOWN. It counts
// NewSubConn and Shutdown calls so that a benchmark can prove that every
// SubConn it caused was shut down exactly once.
type fakeCC struct {
	balancer.ClientConn // nil: a call that is not faked panics

	ser    *serializer
	notify chan struct{} // a token after every UpdateState
	timer  *time.Timer   // reused by waitFor

	mu        sync.Mutex
	state     balancer.State
	updates   int
	created   int
	shutdowns int
	double    []string // SubConns shut down more than once
}

func newFakeCC() *fakeCC {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &fakeCC{ser: newSerializer(), notify: make(chan struct{}, 1), timer: t}
}

func (f *fakeCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("fake: NewSubConn with %d addresses", len(addrs))
	}
	f.mu.Lock()
	f.created++
	f.mu.Unlock()
	return &fakeSC{cc: f, addr: addrs[0].Addr, listener: opts.StateListener, state: connectivity.Idle}, nil
}

func (f *fakeCC) UpdateState(s balancer.State) {
	f.mu.Lock()
	f.state = s
	f.updates++
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func (f *fakeCC) ResolveNow(resolver.ResolveNowOptions) {}

func (f *fakeCC) Target() string { return "fake:///bench" }

// MetricsRecorder records nothing, for either side. It is grpc's no-op
// recorder, not nil: a real ClientConn always has one, and grpc-go before
// v1.85 has pick_first record its connection metrics through it unchecked.
func (f *fakeCC) MetricsRecorder() estats.MetricsRecorder {
	return estats.UnimplementedMetricsRecorder{}
}

// current returns the last state the policy reported.
func (f *fakeCC) current() balancer.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// counts returns the NewSubConn and Shutdown calls so far.
func (f *fakeCC) counts() (created, shutdowns int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created, f.shutdowns
}

// stateUpdates returns the number of UpdateState calls so far.
func (f *fakeCC) stateUpdates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.updates
}

// waitFor waits until the serializer has nothing left to deliver and cond
// holds for the policy's last state, looking again after every UpdateState
// and, since a policy may change what its current picker returns without a
// new UpdateState (leakproof's READY picker sees endpoints turn READY), at
// growing intervals from 50µs to 5ms.
func (f *fakeCC) waitFor(tb testing.TB, what string, cond func(balancer.State) bool) {
	deadline := time.Now().Add(10 * time.Second)
	poll := 50 * time.Microsecond
	for {
		f.ser.waitIdle()
		if cond(f.current()) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s; last state %v", what, f.current().ConnectivityState)
		}
		f.timer.Reset(poll)
		select {
		case <-f.notify:
			f.timer.Stop() // Go 1.23 timers: no stale tick after Stop
		case <-f.timer.C:
			poll = min(2*poll, 5*time.Millisecond)
		}
	}
}

// close stops the serializer (updates still queued are dropped, as grpc
// drops them once the balancer is closed) and fails tb unless every SubConn
// created was shut down exactly once.
func (f *fakeCC) close(tb testing.TB) {
	f.ser.close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.created != f.shutdowns {
		tb.Errorf("fake: %d SubConns created, %d shut down", f.created, f.shutdowns)
	}
	for _, d := range f.double {
		tb.Errorf("fake: SubConn %s shut down more than once", d)
	}
}

// fakeSC is a SubConn of fakeCC. grpc's SubConn interface can only be
// implemented by embedding it; the methods a policy calls are faked.
type fakeSC struct {
	balancer.SubConn // nil: GetOrBuildProducer panics

	cc       *fakeCC
	addr     string
	listener func(balancer.SubConnState)

	mu       sync.Mutex
	state    connectivity.State
	shutdown bool
}

func (sc *fakeSC) Connect() {
	sc.mu.Lock()
	if sc.shutdown || sc.state != connectivity.Idle {
		sc.mu.Unlock()
		return
	}
	sc.state = connectivity.Connecting
	sc.mu.Unlock()
	sc.cc.ser.schedule(func() { sc.deliver(connectivity.Connecting) })
	sc.cc.ser.schedule(func() {
		sc.mu.Lock()
		if !sc.shutdown {
			sc.state = connectivity.Ready
		}
		sc.mu.Unlock()
		sc.deliver(connectivity.Ready)
	})
}

func (sc *fakeSC) deliver(s connectivity.State) {
	sc.mu.Lock()
	shut := sc.shutdown
	sc.mu.Unlock()
	if !shut {
		sc.listener(balancer.SubConnState{ConnectivityState: s})
	}
}

func (sc *fakeSC) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.cc.ser.schedule(func() {
		sc.mu.Lock()
		ok := !sc.shutdown && sc.state == connectivity.Ready
		sc.mu.Unlock()
		if ok {
			l(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		}
	})
}

func (sc *fakeSC) Shutdown() {
	sc.mu.Lock()
	again := sc.shutdown
	sc.shutdown = true
	sc.mu.Unlock()
	sc.cc.mu.Lock()
	if again {
		sc.cc.double = append(sc.cc.double, sc.addr)
	} else {
		sc.cc.shutdowns++
	}
	sc.cc.mu.Unlock()
	if !again {
		sc.cc.ser.schedule(func() { sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Shutdown}) })
	}
}

func (sc *fakeSC) UpdateAddresses([]resolver.Address) {}

// serializer runs callbacks one at a time in order on its own goroutine, as
// grpc's balancer wrapper does for SubConn updates.
type serializer struct {
	mu      sync.Mutex
	cond    sync.Cond
	q       []func()
	running bool
	closed  bool
	done    chan struct{}
}

func newSerializer() *serializer {
	s := &serializer{done: make(chan struct{})}
	s.cond.L = &s.mu
	go s.run()
	return s
}

func (s *serializer) schedule(f func()) {
	s.mu.Lock()
	if !s.closed {
		s.q = append(s.q, f)
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

func (s *serializer) run() {
	defer close(s.done)
	s.mu.Lock()
	for {
		for len(s.q) == 0 && !s.closed {
			s.cond.Wait()
		}
		if s.closed {
			s.q = nil
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.running = true
		s.mu.Unlock()
		f()
		s.mu.Lock()
		s.running = false
		if len(s.q) == 0 {
			s.cond.Broadcast()
		}
	}
}

// do runs f on the serializer and waits for it to return.
func (s *serializer) do(f func()) {
	done := make(chan struct{})
	s.schedule(func() {
		defer close(done)
		f()
	})
	<-done
}

// waitIdle waits until nothing is queued or running.
func (s *serializer) waitIdle() {
	s.mu.Lock()
	for (len(s.q) > 0 || s.running) && !s.closed {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

func (s *serializer) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.done
}

// onFake is one policy built through its registered builder on a fakeCC.
type onFake struct {
	bal balancer.Balancer
	cc  *fakeCC
	cfg serviceconfig.LoadBalancingConfig
}

// buildOnFake builds the policy registered as name with the JSON config cfg
// ("" for none).
func buildOnFake(tb testing.TB, name, cfg string) *onFake {
	tb.Helper()
	bb := balancer.Get(name)
	if bb == nil {
		tb.Fatalf("no balancer registered as %q", name)
	}
	p := &onFake{cc: newFakeCC()}
	if cfg != "" {
		parser, ok := bb.(balancer.ConfigParser)
		if !ok {
			tb.Fatalf("%s takes no config", name)
		}
		c, err := parser.ParseConfig(json.RawMessage(cfg))
		if err != nil {
			tb.Fatalf("%s: ParseConfig(%s): %v", name, cfg, err)
		}
		p.cfg = c
	}
	p.bal = bb.Build(p.cc, balancer.BuildOptions{})
	return p
}

// update sends the policy a resolver update of endpoints. Like grpc, it
// calls the policy on the serializer, so SubConn updates the update causes
// are delivered after it returns, never during it.
func (p *onFake) update(tb testing.TB, eps []resolver.Endpoint) {
	var err error
	p.cc.ser.do(func() {
		err = p.bal.UpdateClientConnState(balancer.ClientConnState{
			ResolverState:  resolver.State{Endpoints: eps},
			BalancerConfig: p.cfg,
		})
	})
	if err != nil {
		tb.Fatalf("UpdateClientConnState: %v", err)
	}
}

// close closes the policy (on the serializer, as grpc does) and checks that
// every SubConn it created was shut down exactly once.
func (p *onFake) close(tb testing.TB) {
	p.cc.ser.do(p.bal.Close)
	p.cc.close(tb)
}

// readyOn returns a condition that holds once the policy is READY and its
// picker spreads picks over exactly the backends in want (round_robin: the
// first address of every endpoint), or, with one, picks a backend in want
// (pick_first: any address of the list).
func readyOn(want map[string]bool, roundRobin bool, picks int) func(balancer.State) bool {
	seen := make(map[string]bool, len(want))
	return func(s balancer.State) bool {
		if s.ConnectivityState != connectivity.Ready || s.Picker == nil {
			return false
		}
		if !roundRobin {
			res, err := s.Picker.Pick(balancer.PickInfo{})
			if err != nil {
				return false
			}
			return want[res.SubConn.(*fakeSC).addr]
		}
		clear(seen)
		for range picks {
			res, err := s.Picker.Pick(balancer.PickInfo{})
			if err != nil {
				return false
			}
			a := res.SubConn.(*fakeSC).addr
			if !want[a] {
				return false
			}
			seen[a] = true
		}
		return len(seen) == len(want)
	}
}
