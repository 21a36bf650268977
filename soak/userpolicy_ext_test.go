package soak_test

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// userPolicy is a round robin as a user writes one, registered by this test
// package (after the soak's own init ran): one SubConn per address, shut
// down when the resolver removes the address, and a picker that reports
// its own error, not the connection's. It does not leak, so it must pass
// every fault.
const userPolicy = "soak_test_user_round_robin"

func init() { balancer.Register(userBuilder{}) }

type userBuilder struct{}

func (userBuilder) Name() string { return userPolicy }

func (userBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &userBalancer{cc: cc, scs: map[string]*userSC{}}
}

type userBalancer struct {
	cc balancer.ClientConn

	mu  sync.Mutex
	scs map[string]*userSC // by address
}

type userSC struct {
	addr  string
	sc    balancer.SubConn
	state connectivity.State
}

// errNoBackend is the picker's own error: it says nothing of handshakes or
// certificates.
var errNoBackend = status.Error(codes.Unavailable, "user round robin: no ready backend")

func (b *userBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
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
		u := &userSC{addr: addr, state: connectivity.Idle}
		sc, err := b.cc.NewSubConn([]resolver.Address{{Addr: addr}}, balancer.NewSubConnOptions{
			StateListener: func(st balancer.SubConnState) { b.updateState(u, st) },
		})
		if err != nil {
			continue
		}
		u.sc = sc
		b.scs[addr] = u
		sc.Connect()
	}
	for addr, u := range b.scs {
		if !want[addr] {
			u.sc.Shutdown()
			delete(b.scs, addr)
		}
	}
	b.updatePickerLocked()
	if len(want) == 0 {
		return balancer.ErrBadResolverState
	}
	return nil
}

func (b *userBalancer) updateState(u *userSC, st balancer.SubConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.scs[u.addr] != u {
		return // removed and shut down
	}
	u.state = st.ConnectivityState
	if u.state == connectivity.Idle {
		u.sc.Connect()
	}
	b.updatePickerLocked()
}

// updatePickerLocked sends a picker over the READY SubConns. Caller must
// hold b.mu.
func (b *userBalancer) updatePickerLocked() {
	var ready []balancer.SubConn
	connecting := false
	for _, u := range b.scs {
		switch u.state {
		case connectivity.Ready:
			ready = append(ready, u.sc)
		case connectivity.Connecting, connectivity.Idle:
			connecting = true
		}
	}
	switch {
	case len(ready) > 0:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &userPicker{scs: ready}})
	case connecting:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: userErrPicker{balancer.ErrNoSubConnAvailable}})
	default:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: userErrPicker{errNoBackend}})
	}
}

func (b *userBalancer) ResolverError(error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.scs) == 0 {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: userErrPicker{errNoBackend}})
	}
}

func (b *userBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *userBalancer) ExitIdle() {}

func (b *userBalancer) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr, u := range b.scs {
		u.sc.Shutdown()
		delete(b.scs, addr)
	}
}

type userPicker struct {
	scs  []balancer.SubConn
	next atomic.Uint32
}

func (p *userPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.scs[p.next.Add(1)%uint32(len(p.scs))]}, nil
}

type userErrPicker struct{ err error }

func (p userErrPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
