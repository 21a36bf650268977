package benchmarks

import (
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// floorName is the floor of BenchmarkChurnScale: a round robin cut down to
// what every round robin that shards endpoints over grpc's pick_first must
// do. It builds one pick_first child per new endpoint, updates it once,
// closes the children of endpoints that left, and publishes one picker over
// all children once every child is READY. It keeps no aggregate state, no
// trace, no subchannel manager, and handles no failure (every backend of
// the fake is up). It is not a policy anyone should use: it shows what
// grpc's pick_first children alone cost, and how that cost grows with the
// list on the machine at hand, so that a round robin's growth can be read
// against it.
const floorName = "leakproof_bench_floor"

var floorImpl = policyImpl{"round_robin", "floor", floorName, ""}

func init() { balancer.Register(floorBuilder{}) }

type floorBuilder struct{}

func (floorBuilder) Name() string { return floorName }

func (floorBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	return &floor{cc: cc, opts: opts, children: map[string]*floorChild{}}
}

type floor struct {
	cc   balancer.ClientConn
	opts balancer.BuildOptions

	mu        sync.Mutex
	children  map[string]*floorChild // by endpointKey
	order     []*floorChild          // the children in list order, once each
	ready     int                    // children of order that are READY
	published bool                   // a picker over order was sent
}

// floorChild is one pick_first child. NewSubConn goes straight to the
// parent's ClientConn.
type floorChild struct {
	balancer.ClientConn
	f      *floor
	b      balancer.Balancer
	picker balancer.Picker
	ready  bool
	gone   bool
}

// endpointKey is the endpoint's addresses, without allocating for the
// common endpoint of one address.
func endpointKey(ep resolver.Endpoint) string {
	if len(ep.Addresses) == 1 {
		return ep.Addresses[0].Addr
	}
	var sb strings.Builder
	for i, a := range ep.Addresses {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(a.Addr)
	}
	return sb.String()
}

func (f *floor) UpdateClientConnState(s balancer.ClientConnState) error {
	eps := s.ResolverState.Endpoints
	next := make(map[string]*floorChild, len(eps))
	order := make([]*floorChild, 0, len(eps))
	type fresh struct {
		c  *floorChild
		ep resolver.Endpoint
	}
	var created []fresh
	for _, ep := range eps {
		k := endpointKey(ep)
		if next[k] != nil {
			continue
		}
		c := f.children[k]
		if c == nil {
			c = &floorChild{ClientConn: f.cc, f: f}
			c.b = balancer.Get(grpcpickfirst.Name).Build(c, f.opts)
			created = append(created, fresh{c, ep})
		}
		next[k] = c
		order = append(order, c)
	}
	f.mu.Lock()
	var gone []*floorChild
	for k, c := range f.children {
		if next[k] == nil {
			c.gone = true
			gone = append(gone, c)
		}
	}
	f.children, f.order, f.published = next, order, false
	f.ready = 0
	for _, c := range order {
		if c.ready {
			f.ready++
		}
	}
	f.mu.Unlock()
	for _, c := range gone {
		c.b.Close()
	}
	for _, n := range created {
		rs := grpcpickfirst.EnableHealthListener(resolver.State{Endpoints: []resolver.Endpoint{n.ep}})
		if err := n.c.b.UpdateClientConnState(balancer.ClientConnState{ResolverState: rs}); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.maybePublishLocked()
	f.mu.Unlock()
	return nil
}

func (c *floorChild) UpdateState(s balancer.State) {
	f := c.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.gone {
		return
	}
	c.picker = s.Picker
	if r := s.ConnectivityState == connectivity.Ready; r != c.ready {
		c.ready = r
		if r {
			f.ready++
		} else {
			f.ready--
		}
	}
	f.maybePublishLocked()
}

// maybePublishLocked sends one picker over every child once all are READY.
func (f *floor) maybePublishLocked() {
	if f.published || len(f.order) == 0 || f.ready != len(f.order) {
		return
	}
	f.published = true
	ps := make([]balancer.Picker, len(f.order))
	for i, c := range f.order {
		ps[i] = c.picker
	}
	f.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: &floorPicker{pickers: ps}})
}

type floorPicker struct {
	pickers []balancer.Picker
	next    atomic.Uint32
}

func (p *floorPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	return p.pickers[p.next.Add(1)%uint32(len(p.pickers))].Pick(info)
}

func (f *floor) ResolverError(error) {}

func (f *floor) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (f *floor) ExitIdle() {}

func (f *floor) Close() {
	f.mu.Lock()
	all := f.children
	for _, c := range all {
		c.gone = true
	}
	f.children, f.order = nil, nil
	f.mu.Unlock()
	for _, c := range all {
		c.b.Close()
	}
}
