package main

import (
	"errors"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// soakLeakyName is a round-robin policy with the bug the soak exists to
// catch: when the resolver removes an address it forgets the SubConn
// without calling Shutdown. Its socket stays open for as long as the
// channel does; grpc's ClientConn.Close cleans it up at the very end, so
// only a check made while the channel is open can see it. It copies the
// policy in leaktest/soak's tests, which a command test cannot import.
const soakLeakyName = "cmd_soak_leaky_round_robin"

func init() { balancer.Register(soakLeakyBuilder{}) }

type soakLeakyBuilder struct{}

func (soakLeakyBuilder) Name() string { return soakLeakyName }

func (soakLeakyBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &soakLeaky{cc: cc, scs: map[string]*soakLeakySC{}}
}

type soakLeaky struct {
	cc balancer.ClientConn

	mu  sync.Mutex
	scs map[string]*soakLeakySC // by address: the ones it still knows
}

type soakLeakySC struct {
	addr  string
	sc    balancer.SubConn
	state connectivity.State
}

func (b *soakLeaky) UpdateClientConnState(s balancer.ClientConnState) error {
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
		l := &soakLeakySC{addr: addr, state: connectivity.Idle}
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

func (b *soakLeaky) updateState(l *soakLeakySC, st balancer.SubConnState) {
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
func (b *soakLeaky) updatePickerLocked() {
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
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &soakLeakyPicker{scs: ready}})
	case connecting:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: soakErrPicker{balancer.ErrNoSubConnAvailable}})
	default:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: soakErrPicker{errors.New("leaky: no backend")}})
	}
}

func (b *soakLeaky) ResolverError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.scs) == 0 {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: soakErrPicker{err}})
	}
}

func (b *soakLeaky) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *soakLeaky) ExitIdle() {}

func (b *soakLeaky) Close() {}

type soakLeakyPicker struct {
	scs  []balancer.SubConn
	next atomic.Uint32
}

func (p *soakLeakyPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.scs[p.next.Add(1)%uint32(len(p.scs))]}, nil
}

type soakErrPicker struct{ err error }

func (p soakErrPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
