package leakzoo

import (
	"errors"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// rr is the round robin every zoo policy builds on: SubConns by address, a
// picker over the READY ones, Connect on IDLE. The policies differ only in
// how they replace and forget SubConns.
type rr struct {
	cc balancer.ClientConn

	mu     sync.Mutex
	subs   map[string]*sub // the SubConns the policy knows, by address
	closed bool
	// onStateLocked, if set, replaces the default reaction to a state
	// change (Connect on IDLE). Caller holds mu.
	onStateLocked func(s *sub, st connectivity.State)
	// readyLocked, if set, lists the SubConns the picker picks from
	// instead of the READY ones the policy knows. Caller holds mu.
	readyLocked func() []balancer.SubConn
}

// sub is one SubConn and the state its listener last saw.
type sub struct {
	addr  string
	sc    balancer.SubConn
	state connectivity.State
}

func newRR(cc balancer.ClientConn) *rr {
	return &rr{cc: cc, subs: map[string]*sub{}}
}

// addresses returns every address of the resolver state, in order, with
// repeats: an address in two endpoints appears twice.
func addresses(s resolver.State) []string {
	var out []string
	for _, a := range s.Addresses {
		out = append(out, a.Addr)
	}
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			out = append(out, a.Addr)
		}
	}
	return out
}

// newSubLocked creates and connects a SubConn to addr; it does not record
// it. Caller must hold b.mu.
func (b *rr) newSubLocked(addr string) *sub {
	s := &sub{addr: addr, state: connectivity.Idle}
	sc, err := b.cc.NewSubConn([]resolver.Address{{Addr: addr}}, balancer.NewSubConnOptions{
		StateListener: func(st balancer.SubConnState) { b.stateChange(s, st.ConnectivityState) },
	})
	if err != nil {
		return nil
	}
	s.sc = sc
	sc.Connect()
	return s
}

func (b *rr) stateChange(s *sub, st connectivity.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || st == connectivity.Shutdown {
		return
	}
	s.state = st
	if b.onStateLocked != nil {
		b.onStateLocked(s, st)
	} else if st == connectivity.Idle {
		s.sc.Connect() // a SubConn the policy forgot reconnects too, as it would in round_robin
	}
	b.updatePickerLocked()
}

// updatePickerLocked sends a picker over the READY SubConns the policy
// knows. Caller must hold b.mu.
func (b *rr) updatePickerLocked() {
	var ready []balancer.SubConn
	connecting := false
	for _, s := range b.subs {
		switch s.state {
		case connectivity.Ready:
			ready = append(ready, s.sc)
		case connectivity.Connecting, connectivity.Idle:
			connecting = true
		}
	}
	if b.readyLocked != nil {
		ready = b.readyLocked()
	}
	switch {
	case len(ready) > 0:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &picker{scs: ready}})
	case connecting:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting, Picker: errPicker{balancer.ErrNoSubConnAvailable}})
	default:
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{errors.New("leakzoo: no backend")}})
	}
}

// removeGoneLocked shuts down the SubConns of addresses no longer listed,
// as a correct policy does. Caller must hold b.mu.
func (b *rr) removeGoneLocked(want map[string]bool) {
	for addr, s := range b.subs {
		if !want[addr] {
			s.sc.Shutdown()
			delete(b.subs, addr)
		}
	}
}

func (b *rr) ResolverError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: errPicker{err}})
	}
}

func (b *rr) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *rr) ExitIdle() {}

// Close shuts down the SubConns the policy still knows; the ones it forgot
// are left to grpc's ClientConn.Close, as in the incidents.
func (b *rr) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for addr, s := range b.subs {
		s.sc.Shutdown()
		delete(b.subs, addr)
	}
}

// addNewLocked makes a SubConn for each address of want the policy has
// none for (the correct part every entry shares). Caller holds b.mu.
func (b *rr) addNewLocked(want map[string]bool) {
	for a := range want {
		if _, ok := b.subs[a]; !ok {
			if s := b.newSubLocked(a); s != nil {
				b.subs[a] = s
			}
		}
	}
}

func set(addrs []string) map[string]bool {
	m := map[string]bool{}
	for _, a := range addrs {
		m[a] = true
	}
	return m
}

// result is what UpdateClientConnState returns after an update of addrs.
func result(addrs []string) error {
	if len(addrs) == 0 {
		return balancer.ErrBadResolverState
	}
	return nil
}

type picker struct {
	scs  []balancer.SubConn
	next atomic.Uint32
}

func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.scs[p.next.Add(1)%uint32(len(p.scs))]}, nil
}

type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}

// builder registers a zoo policy under its name.
type builder struct {
	name  string
	build func(cc balancer.ClientConn) balancer.Balancer
}

func (b builder) Name() string { return b.name }

func (b builder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return b.build(cc)
}
