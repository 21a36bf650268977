// Package roundrobin registers leakproof_round_robin: grpc-go's round_robin,
// with one subchannel per backend shared by every endpoint that names it, and
// a resolver update that costs what changed, not the whole list.
// Import it and name the policy in your service config:
//
//	{"loadBalancingConfig": [{"leakproof_round_robin": {}}]}
//
// Like grpc's round_robin it runs grpc's own pick_first within each endpoint
// (Happy Eyeballs, sticky TRANSIENT_FAILURE, health listener enabled),
// reconnects endpoints that go IDLE, reports READY if any endpoint is READY,
// else CONNECTING if any is connecting, else IDLE if any is idle, else
// TRANSIENT_FAILURE, and spreads picks over the READY endpoints. Unlike it:
//
//   - All children get their subchannels from one subconn.Manager: endpoints
//     that share an address ({A} and {A,B}) and repeated addresses share one
//     subchannel, and so one connection, to that backend.
//   - An update costs one lookup per endpoint plus work for what changed:
//     endpoints whose addresses and attributes did not change, and whose
//     pick_first is READY or IDLE, are not updated again (pick_first would do
//     nothing with the update). The aggregate state is kept incrementally, one
//     set of endpoints per connectivity state, and the READY picker grows in
//     place, so an endpoint turning READY costs O(1), not a rebuild.
//   - Cheap pickers: one at the end of each resolver update (children's
//     changes during it are batched into it, as grpc does), and then, as
//     grpc's, one per endpoint transition; but the READY picker is a view of
//     the READY endpoints that sees one turn READY at once, so each costs
//     O(1). grpc rebuilds each from every endpoint: a resolver update that
//     brings n endpoints READY costs it O(n²).
//   - With "coalescePickers": true, fewer pickers: while the balancer stays
//     READY or CONNECTING, one only when an endpoint leaves the READY set
//     (RPCs that picked it wait for the next); a resolver update that brings
//     n endpoints READY sends a constant number, not n. Off by default
//     because parents and tests written against grpc's round_robin may
//     count pickers (grpc's own weighted_target tests wait for one per
//     transition).
//   - Picks go straight to the READY subchannels through atomic loads and
//     one atomic counter, with no allocation.
//
// Config (all optional; under leakproof's name unknown fields and bad values
// are errors; under grpc's name, after ReplaceGRPCPolicy, every config grpc's
// round_robin accepts is accepted, and bad values of these fields are logged
// and ignored):
//
//	coalescePickers    bool    fewer pickers (above); default false
//	drainTimeout       string  Go duration, (0, 24h]; default 30s (subconn.DefaultDrainTimeout)
//	traceRingSize      int     events kept for the admin service, [0, 1048576]; default 512
//	reresolveInterval  string  Go duration, [1s, 24h]; default off: while the policy is READY,
//	                           ask the resolver to resolve again this often
//
// reresolveInterval is for grpc's dns resolver, which resolves again only
// when a policy asks: a backend removed from DNS while it stays healthy is
// otherwise kept for the life of the channel. With it the backend is
// released within reresolveInterval plus the resolver's minimum interval
// (30 s for grpc's dns resolver) plus drainTimeout. Each resolution costs the
// dns resolver three queries (A, AAAA and the _grpc_config TXT record). The
// timer runs only while the policy is READY and is no RPC: it never keeps
// grpc from putting an unused channel into IDLE mode, which closes the
// policy and stops it.
package roundrobin

import (
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/resolver"
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
	rr := policy.NewReresolver(cc)
	return &roundRobin{
		cc:    rr,
		rr:    rr,
		m:     subconn.NewManager(cc, subconn.WithTarget(opts.Target.String())),
		name:  b.name,
		bOpts: opts,
		byKey: make(map[endpointKey]*endpoint),
	}
}

// roundRobin shards the resolver's endpoints over grpc pick_first children,
// one per endpoint (keyed, as grpc's endpointsharding keys them, by the
// multiset of their addresses), all on one subconn.Manager.
//
// Lock order: endpoint.mu, then roundRobin.mu (a child reports its state
// while its pick_first holds its own lock). No child is called while
// roundRobin.mu is held; the parent ClientConn is (UpdateState), as grpc's
// endpointsharding does, so that pickers reach grpc in the order they were
// built.
type roundRobin struct {
	// Initialized at build time, read-only after.
	cc    balancer.ClientConn // rr
	rr    *policy.Reresolver
	m     *subconn.Manager
	name  string
	bOpts balancer.BuildOptions

	// Used only by grpc's calls into the balancer, which grpc serializes.
	childAttrs *attributes.Attributes // resolver attributes the children last got

	mu          sync.Mutex
	closed      bool
	inhibit     bool   // a call from grpc is updating children: record, publish at its end
	coalesce    bool   // the config's coalescePickers
	gen         uint64 // resolver updates so far; endpoint.gen marks those in the latest
	byKey       map[endpointKey]*endpoint
	all         []*endpoint // every endpoint of the latest update; endpoint.allIdx
	agg         aggregate
	resolverErr error // the last resolver error since the last good update
	pub         publisher
}

func (b *roundRobin) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg := configOf(s.BalancerConfig)
	cfg.Apply(b.m)
	b.m.SetPlacement(subconn.PlacementOf(s.ResolverState))
	b.rr.SetInterval(cfg.Reresolve())
	rs := grpcpickfirst.EnableHealthListener(s.ResolverState)
	attrsChanged := !rs.Attributes.Equal(b.childAttrs)
	b.childAttrs = rs.Attributes
	eps := rs.Endpoints

	// Decide under the lock who is new, who needs the update and who is
	// gone; call the children after it.
	var created, updated, removed []*endpoint
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.resolverErr = nil
	b.coalesce = cfg.CoalescePickers
	b.inhibit = true
	b.gen++
	// Like endpointsharding, start at a random endpoint, so that clients
	// sharing a list do not all connect in the same order.
	start := 0
	if len(eps) > 0 {
		start = rand.IntN(len(eps))
	}
	seen := 0
	for j := range eps {
		ep := eps[(start+j)%len(eps)]
		k := keyOf(ep)
		e, ok := b.byKey[k]
		if ok && e.gen == b.gen {
			continue // a duplicate endpoint in this update
		}
		if !ok {
			e = newEndpoint(b, ep)
			e.gen = b.gen
			seen++
			b.addLocked(e)
			created = append(created, e)
			continue
		}
		e.gen = b.gen
		seen++
		// pick_first does nothing with an unchanged update when READY or
		// IDLE; CONNECTING and TRANSIENT_FAILURE restart their pass.
		if attrsChanged || !sameEndpoint(e.ep, ep) || e.setOf() == connectivity.Connecting || e.setOf() == connectivity.TransientFailure {
			e.ep = ep
			updated = append(updated, e)
		}
	}
	if seen < len(b.all) {
		for i := 0; i < len(b.all); {
			if e := b.all[i]; e.gen != b.gen {
				b.removeLocked(e) // moves the last endpoint to i
				removed = append(removed, e)
				continue
			}
			i++
		}
	}
	b.mu.Unlock()

	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, e := range created {
		keep(e.start(rs.Attributes))
	}
	for _, e := range updated {
		keep(e.update(rs.Attributes))
	}
	for _, e := range removed {
		e.close()
	}

	b.mu.Lock()
	b.inhibit = false
	empty := len(b.all) == 0
	b.publishLocked()
	b.mu.Unlock()
	if empty {
		return balancer.ErrBadResolverState
	}
	return firstErr
}

// ResolverError passes err to the endpoints; with no endpoint at all, RPCs
// fail with it (grpc's round_robin reports only "no children to pick from").
func (b *roundRobin) ResolverError(err error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.resolverErr = err
	b.inhibit = true
	children := slices.Clone(b.all)
	b.mu.Unlock()
	for _, e := range children {
		e.resolverError(err)
	}
	b.mu.Lock()
	b.inhibit = false
	b.publishLocked()
	b.mu.Unlock()
}

// ExitIdle asks the IDLE endpoints to connect (pick_first's ExitIdle does
// nothing in any other state).
func (b *roundRobin) ExitIdle() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.inhibit = true
	idle := slices.Clone(b.agg.sets[connectivity.Idle])
	b.mu.Unlock()
	for _, e := range idle {
		e.exitIdle()
	}
	b.mu.Lock()
	b.inhibit = false
	b.publishLocked()
	b.mu.Unlock()
}

// UpdateSubConnState is never called: every SubConn has a StateListener.
func (b *roundRobin) UpdateSubConnState(sc balancer.SubConn, s balancer.SubConnState) {
	logger.Errorf("%s: UpdateSubConnState(%v, %+v) called unexpectedly", b.name, sc, s)
}

func (b *roundRobin) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	children := b.all
	b.all, b.byKey = nil, nil
	b.mu.Unlock()
	b.rr.Close()
	for _, e := range children {
		e.close()
	}
	policy.LogClose(logger.Errorf, b.m.Close(), "%s", b.name)
}

// addLocked adds a new endpoint, IDLE until its pick_first reports. Caller
// must hold b.mu.
func (b *roundRobin) addLocked(e *endpoint) {
	b.byKey[keyOf(e.ep)] = e
	e.allIdx = int32(len(b.all))
	b.all = append(b.all, e)
	b.agg.move(e, connectivity.Idle, nil)
}

// removeLocked takes e out of the balancer; its later updates are dropped.
// Caller must hold b.mu.
func (b *roundRobin) removeLocked(e *endpoint) {
	e.removed = true
	delete(b.byKey, keyOf(e.ep))
	last := len(b.all) - 1
	if i := int(e.allIdx); i != last {
		b.all[i] = b.all[last]
		b.all[i].allIdx = int32(i)
	}
	b.all[last] = nil
	b.all = b.all[:last]
	b.agg.move(e, noSet, nil)
}

// childUpdate records a child's new state and, outside a call from grpc
// (which publishes once at its end), sends grpc a picker for every state
// change of an endpoint, and for a changed picker of an endpoint while the
// balancer is IDLE or in TRANSIENT_FAILURE: the cadence of grpc's
// endpointsharding, which parents and grpc's own tests rely on. While the
// balancer is READY or CONNECTING each such picker costs O(1): the READY
// picker is a view of the READY set (readySet), never rebuilt. With
// coalescePickers, while the balancer stays READY or CONNECTING, it sends
// one only when an endpoint leaves the READY set. It is called by
// endpoint.UpdateState.
func (b *roundRobin) childUpdate(e *endpoint, s balancer.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || e.removed {
		return
	}
	from := e.setOf()
	to := s.ConnectivityState
	if to == connectivity.Shutdown {
		to = noSet
	}
	e.picker = s.Picker
	b.agg.move(e, to, s.Picker)
	if b.inhibit {
		return // the call from grpc in progress publishes at its end
	}
	// An if chain, not a switch: coverage tools attribute an if's
	// condition to the code that runs it, a case's to none.
	if agg := b.agg.state(); !b.pub.published || agg != b.pub.state {
		b.publishLocked()
	} else if b.coalesce && (agg == connectivity.Ready || agg == connectivity.Connecting) {
		// coalescePickers: the picker sent last still picks right. The
		// READY picker sees an endpoint join the READY set at once; the
		// CONNECTING picker queues every pick. Only an endpoint leaving the
		// READY set needs one: an RPC that picked it waits for the next.
		if from == connectivity.Ready && to != connectivity.Ready {
			b.publishLocked()
		}
	} else if from != to {
		// Every transition outside a call from grpc gets a picker, as
		// grpc's endpointsharding sends one (parents and grpc's own tests
		// wait for it), but in O(1) while READY or CONNECTING: the READY
		// picker is a view of the READY set, not a rebuild.
		b.publishLocked()
	} else if agg != connectivity.Ready && agg != connectivity.Connecting && to == agg {
		// An endpoint's picker changed within IDLE or TRANSIENT_FAILURE.
		b.publishLocked()
	}
}

// sameEndpoint reports whether a and b name the same addresses, in the same
// order, with the same attributes.
func sameEndpoint(a, b resolver.Endpoint) bool {
	if len(a.Addresses) != len(b.Addresses) || !a.Attributes.Equal(b.Attributes) {
		return false
	}
	for i := range a.Addresses {
		x, y := &a.Addresses[i], &b.Addresses[i]
		if x.Addr != y.Addr || x.ServerName != y.ServerName || !x.Attributes.Equal(y.Attributes) || !x.BalancerAttributes.Equal(y.BalancerAttributes) {
			return false
		}
	}
	return true
}
