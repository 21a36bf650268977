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
// (almost all of them) is keyed by its address alone, with no allocation.
type endpointKey struct {
	addr  string // the address of a one-address endpoint
	multi string // otherwise: the sorted, base64-encoded addresses
}

func keyOf(ep resolver.Endpoint) endpointKey {
	if len(ep.Addresses) == 1 {
		return endpointKey{addr: ep.Addresses[0].Addr}
	}
	enc := make([]string, len(ep.Addresses))
	for i, a := range ep.Addresses {
		enc[i] = base64.StdEncoding.EncodeToString([]byte(a.Addr))
	}
	slices.Sort(enc)
	return endpointKey{multi: strings.Join(enc, " ")}
}

// endpoint is one endpoint's child: grpc's pick_first on a
// subconn.ClientConn of the balancer's manager, whose parent is the
// endpoint itself (to catch the child's UpdateState) over grpc's ClientConn.
type endpoint struct {
	balancer.ClientConn // grpc's; UpdateState is the endpoint's own

	// Initialized at creation, read-only after.
	b   *roundRobin
	key endpointKey

	// Written only by the balancer's UpdateClientConnState, which grpc
	// serializes with every other call that reads it.
	ep resolver.Endpoint // as last sent to the child

	mu     sync.Mutex // serializes calls into lb
	lb     balancer.Balancer
	closed bool

	// Guarded by b.mu.
	gen     uint64             // the last resolver update that listed it
	removed bool               // no longer listed: its updates are dropped
	state   balancer.State     // as its pick_first last reported
	set     connectivity.State // which of b.agg.sets holds it, or noSet
	setIdx  int                // its index there
	allIdx  int                // its index in b.all
	plain   bool               // READY with a plain SubConn picker
}

func newEndpoint(b *roundRobin, k endpointKey, ep resolver.Endpoint) *endpoint {
	return &endpoint{ClientConn: b.cc, b: b, key: k, ep: ep, set: noSet}
}

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
