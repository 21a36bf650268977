// Package roundrobin registers leakproof_round_robin: grpc-go's round_robin,
// with one subchannel per backend shared by every endpoint that names it.
// Import it and name the policy in your service config:
//
//	{"loadBalancingConfig": [{"leakproof_round_robin": {}}]}
//
// Like grpc's round_robin it runs pick_first within each endpoint (grpc's
// endpointsharding over grpc's pick_first children, health listener
// enabled), reconnects endpoints that go IDLE, and spreads picks over the
// READY endpoints. Unlike it, all children get their subchannels from one
// subconn.Manager: endpoints that share an address ({A} and {A,B}) and
// repeated addresses share one subchannel, and so one connection, to that
// backend. Picks go straight to the READY subchannels through one atomic
// counter, with no allocation.
//
// Config (all optional; under leakproof's name unknown fields and bad values
// are errors; under grpc's name, after ReplaceGRPCPolicy, every config grpc's
// round_robin accepts is accepted, and bad values of these fields are logged
// and ignored):
//
//	drainTimeout   string  Go duration, (0, 24h]; default 30s (subconn.DefaultDrainTimeout)
//	traceRingSize  int     events kept for the admin service, [0, 1048576]; default 512
package roundrobin

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/balancer/endpointsharding"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
)

// Name is the policy's name in service configs.
const Name = "leakproof_round_robin"

var logger = grpclog.Component("leakproof-round-robin")

func init() { balancer.Register(builder{name: Name}) }

// ReplaceGRPCPolicy registers this policy under grpc's own name,
// "round_robin", as well, so every service config that names round_robin
// gets it. The replacement cannot be undone. Call it from an init function
// or from main before any ClientConn is created: grpc's balancer registry is
// not safe for concurrent use.
func ReplaceGRPCPolicy() { balancer.Register(builder{name: "round_robin"}) }

type builder struct{ name string }

func (b builder) Name() string { return b.name }

func (b builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	m := subconn.NewManager(cc, subconn.WithTarget(opts.Target.String()))
	rr := &roundRobin{m: m, name: b.name, cc: &flatPickerCC{ClientConn: cc}}
	child := func(ccChild balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
		hc := m.ClientConn(ccChild, "endpoint")
		return &endpointChild{Balancer: policy.GRPCPickFirst.Build(hc, opts), hc: hc}
	}
	rr.Balancer = endpointsharding.NewBalancer(rr.cc, opts, child, endpointsharding.Options{})
	return rr
}

type roundRobin struct {
	balancer.Balancer // endpointsharding over pick_first children
	m                 *subconn.Manager
	name              string
	cc                *flatPickerCC
}

func (b *roundRobin) UpdateClientConnState(s balancer.ClientConnState) error {
	configOf(s.BalancerConfig).Apply(b.m)
	b.cc.setResolverError(nil)
	return b.Balancer.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: grpcpickfirst.EnableHealthListener(s.ResolverState),
	})
}

// ResolverError passes err to the endpoints; with no endpoint at all, RPCs
// fail with it (grpc's round_robin reports only "no children to pick from").
func (b *roundRobin) ResolverError(err error) {
	b.cc.setResolverError(err)
	b.Balancer.ResolverError(err)
}

func (b *roundRobin) Close() {
	b.Balancer.Close()
	if err := b.m.Close(); err != nil {
		logger.Errorf("%s: %v", b.name, err)
	}
}

// endpointChild names its references after its endpoint's addresses, which
// it learns from its first update (an endpoint's addresses never change: a
// different set is a different child).
type endpointChild struct {
	balancer.Balancer
	hc    *subconn.ClientConn
	named bool
}

func (c *endpointChild) UpdateClientConnState(s balancer.ClientConnState) error {
	if eps := s.ResolverState.Endpoints; !c.named && len(eps) == 1 {
		c.named = true
		var b strings.Builder
		b.WriteString("endpoint{")
		for i, a := range eps[0].Addresses {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.Addr)
		}
		b.WriteByte('}')
		c.hc.SetHolder(b.String())
	}
	return c.Balancer.UpdateClientConnState(s)
}

// flatPickerCC replaces endpointsharding's two-level READY picker with one
// that round-robins over the READY endpoints' real SubConns directly, and
// the picker of a policy with no endpoints with the resolver's error.
type flatPickerCC struct {
	balancer.ClientConn

	mu          sync.Mutex
	resolverErr error // the last resolver error since the last good update
}

func (c *flatPickerCC) setResolverError(err error) {
	c.mu.Lock()
	c.resolverErr = err
	c.mu.Unlock()
}

func (c *flatPickerCC) UpdateState(s balancer.State) {
	switch s.ConnectivityState {
	case connectivity.Ready:
		s.Picker = &picker{src: s.Picker}
	case connectivity.TransientFailure:
		c.mu.Lock()
		err := c.resolverErr
		c.mu.Unlock()
		if err != nil && len(endpointsharding.ChildStatesFromPicker(s.Picker)) == 0 {
			s.Picker = base.NewErrPicker(fmt.Errorf("name resolver error: %v", err))
		}
	}
	c.ClientConn.UpdateState(s)
}

// picker spreads picks over the READY endpoints' real SubConns, one entry
// per endpoint, with one atomic counter. It is built from endpointsharding's
// two-level picker (src) on its first Pick: an update that turns many
// endpoints READY makes as many pickers, and most are replaced before any
// RPC picks from them.
type picker struct {
	src     balancer.Picker
	once    sync.Once
	results []balancer.PickResult // empty: pick with src
	next    atomic.Uint32
}

func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	p.once.Do(p.flatten)
	if len(p.results) == 0 {
		return p.src.Pick(info)
	}
	n := p.next.Add(1)
	return p.results[n%uint32(len(p.results))], nil
}

// flatten collects the READY children's SubConns, or leaves results empty if
// any READY child's picker is not a plain pick_first READY picker.
func (p *picker) flatten() {
	children := endpointsharding.ChildStatesFromPicker(p.src)
	results := make([]balancer.PickResult, 0, len(children))
	for _, cs := range children {
		if cs.State.ConnectivityState != connectivity.Ready {
			continue
		}
		sc, ok := policy.ReadySubConn(cs.State.Picker)
		if !ok {
			return
		}
		results = append(results, balancer.PickResult{SubConn: sc})
	}
	if len(results) > 0 {
		p.next.Store(uint32(rand.IntN(len(results))))
		p.results = results
	}
}
