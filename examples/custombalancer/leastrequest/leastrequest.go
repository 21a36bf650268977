// Package leastrequest registers example_least_request, the template for a
// policy of your own on subconn.Manager: each pick takes whichever of two
// random READY backends has fewer requests in flight. The manager shuts every
// subchannel down exactly once, tracks its sockets and traces every step.
//
//	{"loadBalancingConfig": [{"example_least_request": {}}]}
package leastrequest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// Name is the policy's name in service configs.
const Name = "example_least_request"

func init() { balancer.Register(builder{}) }

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &leastRequest{cc: cc, m: subconn.NewManager(cc, subconn.WithTarget(opts.Target.String())), loads: map[*subconn.SubConn]*load{}}
	// One holder for the whole policy; the manager reconnects what goes IDLE.
	b.set = b.m.NewSet("least_request", b.onState, subconn.WithAutoReconnect())
	return b
}

type leastRequest struct {
	// initialized at build time, read-only after
	cc  balancer.ClientConn
	m   *subconn.Manager
	set *subconn.Set

	// The listener runs concurrently with the balancer's methods.
	mu      sync.Mutex
	loads   map[*subconn.SubConn]*load // every subchannel held; nil once closed
	lastErr error                      // the latest connection or resolver error
}

// load is one backend; its count of requests in flight outlives pickers.
type load struct {
	sc       balancer.SubConn   // the real SubConn: what a PickResult must carry
	state    connectivity.State // as the listener last reported it
	inFlight atomic.Int64
	done     func(balancer.DoneInfo) // made once, so that picks allocate nothing
}

func (b *leastRequest) UpdateClientConnState(s balancer.ClientConnState) error {
	var addrs []resolver.Address
	for _, ep := range s.ResolverState.Endpoints { // one subchannel per endpoint
		if len(ep.Addresses) > 0 {
			addrs = append(addrs, ep.Addresses[0])
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	added, removed, err := b.set.Sync(addrs) // acquires what is new, releases what is gone
	for _, sc := range added {
		l := &load{sc: sc.Unwrap(), state: connectivity.Idle}
		l.done = func(balancer.DoneInfo) { l.inFlight.Add(-1) }
		b.loads[sc] = l
		sc.Connect()
	}
	for _, sc := range removed {
		delete(b.loads, sc)
	}
	if len(addrs) == 0 {
		b.lastErr = errors.New("leastrequest: the resolver returned no endpoints")
		err = errors.Join(err, balancer.ErrBadResolverState)
	}
	b.updatePickerLocked()
	return err
}

// onState is the set's listener: every state change rebuilds the picker.
func (b *leastRequest) onState(sc *subconn.SubConn, s balancer.SubConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.loads[sc]; ok { // not a released one's final SHUTDOWN
		l.state = s.ConnectivityState
		if s.ConnectionError != nil {
			b.lastErr = s.ConnectionError
		}
		b.updatePickerLocked()
	}
}

// updatePickerLocked gives grpc a picker over the READY subchannels. Caller
// must hold b.mu.
func (b *leastRequest) updatePickerLocked() {
	p, connecting := &picker{}, false
	for _, l := range b.loads {
		if l.state == connectivity.Ready {
			p.ready = append(p.ready, l)
		}
		connecting = connecting || l.state == connectivity.Idle || l.state == connectivity.Connecting
	}
	s := balancer.State{ConnectivityState: connectivity.Ready, Picker: p}
	if len(p.ready) == 0 && connecting {
		s = balancer.State{ConnectivityState: connectivity.Connecting, Picker: base.NewErrPicker(balancer.ErrNoSubConnAvailable)}
	} else if len(p.ready) == 0 {
		s = balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: base.NewErrPicker(b.lastErr)}
	}
	b.cc.UpdateState(s)
}

func (b *leastRequest) ResolverError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastErr = err // RPCs fail with it only if no backend is left
	b.updatePickerLocked()
}

// Subchannels reconnect by themselves; the set's listener gets their updates.
func (b *leastRequest) ExitIdle()                                                  {}
func (b *leastRequest) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *leastRequest) Close() {
	b.mu.Lock()
	b.loads = nil // no picker after Close
	b.mu.Unlock()
	b.set.Close() // release every subchannel this policy holds
	b.m.Close()   // and shut down anything still held
}

// picker is an immutable snapshot of the READY backends; only counts move.
type picker struct{ ready []*load }

func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	n, i := len(p.ready), rand.IntN(len(p.ready)) // two different backends, if there are two
	l, other := p.ready[i], p.ready[(i+1+rand.IntN(max(n-1, 1)))%n]
	if other.inFlight.Load() < l.inFlight.Load() {
		l = other
	}
	l.inFlight.Add(1)
	return balancer.PickResult{SubConn: l.sc, Done: l.done}, nil
}
