package subconn

import (
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"
)

// ClientConn is the balancer.ClientConn a child policy (grpc's pickfirst,
// endpointsharding's children, your own) runs on to take its subchannels
// from a Manager, shared by backend key with every other holder; everything
// but NewSubConn, RemoveSubConn, UpdateAddresses and UpdateState goes to the
// parent.
type ClientConn struct {
	balancer.ClientConn // the parent

	m       *Manager
	holder  string
	orphans atomic.Pointer[orphanWatch] // set by WatchOrphans
}

// ClientConn returns a child ClientConn on parent whose subchannels m owns,
// held under the name holder.
func (m *Manager) ClientConn(parent balancer.ClientConn, holder string) *ClientConn {
	return &ClientConn{ClientConn: parent, m: m, holder: holder}
}

// NewSubConn acquires the subchannel for the one address in addrs. A SubConn
// with several addresses is refused: grpc deprecated them, and a shared
// subchannel is one backend.
func (c *ClientConn) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	if len(addrs) != 1 {
		return nil, fmt.Errorf("subconn: NewSubConn for %q needs exactly one address, got %d", c.holder, len(addrs))
	}
	h, err := c.m.acquire(addrs[0], c.holder, acquireOpts{listener: opts.StateListener, nsOpts: opts, untilConnect: true})
	if err != nil {
		return nil, err
	}
	if w := c.orphans.Load(); w != nil {
		w.track(h, addrs[0].Addr)
	}
	return h, nil
}

// RemoveSubConn releases sc.
//
// Deprecated: call Shutdown on the SubConn, as grpc requires.
func (c *ClientConn) RemoveSubConn(sc balancer.SubConn) { sc.Shutdown() }

// UpdateAddresses forwards to sc.UpdateAddresses.
//
// Deprecated: grpc deprecates it.
func (c *ClientConn) UpdateAddresses(sc balancer.SubConn, addrs []resolver.Address) {
	sc.UpdateAddresses(addrs)
}

// UpdateState passes the state on with a picker that returns real SubConns.
func (c *ClientConn) UpdateState(s balancer.State) {
	c.ClientConn.UpdateState(balancer.State{ConnectivityState: s.ConnectivityState, Picker: unwrapPickerOf(s.Picker)})
}

// unwrapPickerOf returns a picker that picks with p and replaces a *SubConn
// in the result with the real SubConn. It adds no allocation to Pick.
func unwrapPickerOf(p balancer.Picker) balancer.Picker {
	if p == nil {
		return nil
	}
	if _, ok := p.(unwrapPicker); ok {
		return p
	}
	return unwrapPicker{p}
}

type unwrapPicker struct{ p balancer.Picker }

func (u unwrapPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	res, err := u.p.Pick(info)
	if h, ok := res.SubConn.(*SubConn); ok {
		res.SubConn = h.SubConn
	}
	return res, err
}
