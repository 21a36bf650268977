// Package leakypolicy registers a load-balancing policy with the bug
// leakproof exists to catch, so that tests can show the soak and the checks
// catching it. Import it only from tests.
package leakypolicy

import (
	"errors"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// Name is a round-robin policy with the bug this project exists to
// catch: when the resolver removes an address it forgets the SubConn
// without calling Shutdown. Its socket stays open for as long as the
// channel does; grpc's ClientConn.Close cleans it up at the very end, so
// only a check made while the channel is open can see it.
const Name = "leaky_round_robin"

func init() { balancer.Register(leakyBuilder{}) }

type leakyBuilder struct{}

func (leakyBuilder) Name() string { return Name }

func (leakyBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &leaky{cc: cc, scs: map[string]*leakySC{}}
}

type leaky struct {
	cc balancer.ClientConn

	mu  sync.Mutex
	scs map[string]*leakySC // by address: the ones it still knows
}

type leakySC struct {
	addr  string
	sc    balancer.SubConn
	state connectivity.State
}

func (b *leaky) UpdateClientConnState(s balancer.ClientConnState) error {
	want := map[string]bool{}
	for _, a := range s.ResolverState.Addresses {
		want[a.Addr] = true
	}
	for _, ep := range s.ResolverState.Endpoints {
		for _, a := range ep.Addresses {
			want[a.Addr] = true
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr := range want {
		if _, ok := b.scs[addr]; ok {
			continue
		}
		l := &leakySC{addr: addr, state: connectivity.Idle}
		sc, err := b.cc.NewSubConn([]resolver.Address{{Addr: addr}}, balancer.NewSubConnOptions{
			StateListener: func(st balancer.SubConnState) { b.updateState(l, st) },
		})
		if err != nil {
			continue
		}
		l.sc = sc
		b.scs[addr] = l
		sc.Connect()
	}
	for addr := range b.scs {
		if !want[addr] {
			delete(b.scs, addr) // the bug: no b.scs[addr].sc.Shutdown()
		}
	}
	b.updatePickerLocked()
	if len(want) == 0 {
		return balancer.ErrBadResolverState
	}
	return nil
}

func (b *leaky) updateState(l *leakySC, st balancer.SubConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l.state = st.ConnectivityState
	if l.state == connectivity.Idle {
		l.sc.Connect() // reconnect, known or forgotten, like round_robin
	}
	if b.scs[l.addr] == l {
		b.updatePickerLocked()
	}
}

// updatePickerLocked sends a picker over the READY SubConns. Caller must
// hold b.mu.
func (b *leaky) updatePickerLocked() {
	var ready []balancer.SubConn
	connecting := false
	for _, l := range b.scs {
		switch l.state {
		case connectivity.Ready:
			ready = append(ready, l.sc)
		case connectivity.Connecting, connectivity.Idle:
			connecting = true
		}
	}
	switch {
	case len(ready) > 0:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &leakyPicker{scs: ready}})
	case connecting:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: errPicker{balancer.ErrNoSubConnAvailable}})
	default:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{errors.New("leaky: no backend")}})
	}
}

func (b *leaky) ResolverError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.scs) == 0 {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{err}})
	}
}

func (b *leaky) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *leaky) ExitIdle() {}

// Close shuts down the SubConns it still knows: its one bug is forgetting
// removed addresses, so that a guard's reclaim is the only cleanup the
// trace needs.
func (b *leaky) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr, l := range b.scs {
		l.sc.Shutdown()
		delete(b.scs, addr)
	}
}

type leakyPicker struct {
	scs  []balancer.SubConn
	next atomic.Uint32
}

func (p *leakyPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.scs[p.next.Add(1)%uint32(len(p.scs))]}, nil
}

type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
