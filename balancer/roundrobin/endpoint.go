package roundrobin

import (
	"encoding/base64"
	"slices"
	"strings"
	"sync"

	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// endpointKey identifies an endpoint as grpc's resolver.EndpointMap does: by
// the multiset of its addresses' Addr, in any order. A one-address endpoint
// (almost all of them) is keyed by its address alone, with no allocation;
// other keys start with a NUL byte, which no address of those does (one that
// does is escaped), so that no two endpoints share a key.
type endpointKey string

func keyOf(ep resolver.Endpoint) endpointKey {
	if len(ep.Addresses) == 1 {
		if a := ep.Addresses[0].Addr; a == "" || a[0] != 0 {
			return endpointKey(a)
		}
		return endpointKey("\x00s" + ep.Addresses[0].Addr)
	}
	enc := make([]string, len(ep.Addresses))
	for i, a := range ep.Addresses {
		enc[i] = base64.StdEncoding.EncodeToString([]byte(a.Addr))
	}
	slices.Sort(enc)
	return endpointKey("\x00m" + strings.Join(enc, " "))
}

// endpoint is one endpoint's child: grpc's pick_first on a
// subconn.ClientConn of the balancer's manager, whose parent is the
// endpoint itself (to catch the child's UpdateState) over grpc's ClientConn.
type endpoint struct {
	balancer.ClientConn // grpc's; UpdateState is the endpoint's own

	// Initialized at creation, read-only after.
	b *roundRobin

	// Written only by the balancer's UpdateClientConnState, which grpc
	// serializes with every other call that reads it. Its key (keyOf) never
	// changes.
	ep resolver.Endpoint // as last sent to the child

	mu     sync.Mutex // serializes calls into lb
	lb     balancer.Balancer
	closed bool

	// Guarded by b.mu. (Small types: there is one endpoint per backend,
	// and these fit it in 128 bytes.)
	gen     uint64          // the last resolver update that listed it
	picker  balancer.Picker // as its pick_first last reported
	setIdx  int32           // its index in b.agg.sets[set]
	allIdx  int32           // its index in b.all
	set     int8            // a connectivity.State: which of b.agg.sets holds it, or noSet
	removed bool            // no longer listed: its updates are dropped
}

func newEndpoint(b *roundRobin, ep resolver.Endpoint) *endpoint {
	return &endpoint{ClientConn: b.cc, b: b, ep: ep, set: int8(noSet)}
}

// setOf returns which of b.agg.sets holds e, or noSet. Caller must hold b.mu.
func (e *endpoint) setOf() connectivity.State { return connectivity.State(e.set) }

// holderName names the endpoint's references in traces and snapshots.
func holderName(ep resolver.Endpoint) string {
	var sb strings.Builder
	sb.WriteString("endpoint{")
	for i, a := range ep.Addresses {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(a.Addr)
	}
	sb.WriteByte('}')
	return sb.String()
}

// UpdateState is the child's state, for the balancer to aggregate.
func (e *endpoint) UpdateState(s balancer.State) {
	e.b.childUpdate(e, s)
	if s.ConnectivityState == connectivity.Idle {
		// Reconnect, as endpointsharding does; not from here: the child
		// holds its own lock while it reports.
		go e.exitIdle()
	}
}

func (e *endpoint) childState(attrs *attributes.Attributes) balancer.ClientConnState {
	return balancer.ClientConnState{ResolverState: resolver.State{
		Endpoints:  []resolver.Endpoint{e.ep},
		Attributes: attrs,
	}}
}

// start builds the endpoint's pick_first and gives it its endpoint.
func (e *endpoint) start(attrs *attributes.Attributes) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	hc := e.b.m.ClientConn(e, holderName(e.ep))
	e.lb = policy.GRPCPickFirst.Build(hc, e.b.bOpts)
	return e.lb.UpdateClientConnState(e.childState(attrs))
}

func (e *endpoint) update(attrs *attributes.Attributes) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.lb == nil {
		return nil
	}
	return e.lb.UpdateClientConnState(e.childState(attrs))
}

func (e *endpoint) resolverError(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed && e.lb != nil {
		e.lb.ResolverError(err)
	}
}

func (e *endpoint) exitIdle() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed && e.lb != nil {
		e.lb.ExitIdle()
	}
}

func (e *endpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed && e.lb != nil {
		e.lb.Close()
	}
	e.closed = true
}
