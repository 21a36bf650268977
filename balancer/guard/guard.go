package guard

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/serviceconfig"
)

// Name is the policy's name in service configs.
const Name = "leakproof_guard"

var logger = grpclog.Component("leakproof-guard")

func init() { balancer.Register(builder{}) }

type builder struct{}

func (builder) Name() string { return Name }

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	return newGuard(cc, opts, Name, nil, subconn.NewManager(cc, subconn.WithTarget(opts.Target.String())))
}

func (builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return parseConfig(js)
}

// guard runs one child policy on a manager's ClientConn.
//
// Lock order: g.mu is never held while calling into a child (a child may
// call UpdateState from inside any call), only while passing a child's
// state on to the channel, which never calls back into the balancer.
type guard struct {
	// Initialized at build time, read-only after.
	cc    balancer.ClientConn // rr
	rr    *policy.Reresolver
	bopts balancer.BuildOptions
	m     *subconn.Manager
	name  string    // Name, or the wrapped policy's name
	fixed *lbConfig // Wrap: child and options fixed, the child's config comes with each update

	mu      sync.Mutex
	current *child // the child whose states reach the channel
	closed  bool
}

func newGuard(cc balancer.ClientConn, opts balancer.BuildOptions, name string, fixed *lbConfig, m *subconn.Manager) *guard {
	rr := policy.NewReresolver(cc)
	if fixed != nil {
		rr.SetInterval(fixed.reresolve)
	}
	return &guard{cc: rr, rr: rr, bopts: opts, m: m, name: name, fixed: fixed}
}

// child is one built child policy and the ClientConn it creates SubConns on.
type child struct {
	g      *guard
	name   string
	b      balancer.Balancer
	hc     *subconn.ClientConn
	parent childParent
	fixed  bool // grpc's pick_first: a READY picker always returns one stored result
}

// childParent passes a child's state on to the channel while it is the
// current child.
type childParent struct {
	balancer.ClientConn // the channel
	c                   *child
}

func (p *childParent) UpdateState(s balancer.State) {
	if p.c.fixed && s.ConnectivityState == connectivity.Ready {
		// grpc's pick_first returns one stored result from a READY picker:
		// pick it once here, so that a pick costs what pick_first's own
		// does instead of a call through the unwrapping picker.
		if sc, ok := policy.ReadySubConn(s.Picker); ok {
			s.Picker = policy.NewFixedPicker(sc)
		}
	}
	g := p.c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.current == p.c && !g.closed {
		g.cc.UpdateState(s)
	}
}

func (g *guard) newChild(b balancer.Builder) *child {
	c := &child{g: g, name: b.Name(), fixed: b == policy.GRPCPickFirst}
	c.parent = childParent{ClientConn: g.cc, c: c}
	c.hc = g.m.ClientConn(&c.parent, c.name)
	c.b = b.Build(c.hc, g.bopts)
	return c
}

func (g *guard) UpdateClientConnState(s balancer.ClientConnState) error {
	g.m.SetPlacement(subconn.PlacementOf(s.ResolverState))
	cfg := g.fixed
	if cfg != nil {
		fixed := *cfg
		fixed.childConfig = s.BalancerConfig
		cfg = &fixed
	} else {
		c, ok := s.BalancerConfig.(*lbConfig)
		if !ok {
			return fmt.Errorf("%s: received config of type %T, want the result of its ParseConfig: %w", g.name, s.BalancerConfig, balancer.ErrBadResolverState)
		}
		cfg = c
		cfg.manager.Apply(g.m)
		g.rr.SetInterval(cfg.manager.Reresolve())
	}

	var err error
	g.m.Serialize(func() { err = g.update(s, cfg) })
	return err
}

// update passes s to the child cfg names, building it first if it is not
// the current one. It runs in Serialize.
func (g *guard) update(s balancer.ClientConnState, cfg *lbConfig) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fmt.Errorf("%s: update after Close", g.name)
	}
	c, old := g.current, (*child)(nil)
	g.mu.Unlock()
	if c == nil || c.name != cfg.child.Name() {
		// A new child (or a switch of policy): it gets its own ClientConn on
		// the same manager, so the subchannels both children want are
		// shared, not reconnected. The old child closes after the new one
		// has its first update.
		old, c = c, g.newChild(cfg.child)
		g.mu.Lock()
		closed := g.closed
		if !closed {
			g.current = c
		}
		g.mu.Unlock()
		if closed {
			c.close()
			return fmt.Errorf("%s: update after Close", g.name)
		}
	}
	c.hc.WatchOrphans(cfg.orphanTimeout, cfg.orphans)
	c.hc.ObserveResolverState(s.ResolverState)
	err := c.b.UpdateClientConnState(balancer.ClientConnState{ResolverState: s.ResolverState, BalancerConfig: cfg.childConfig})
	if old != nil {
		old.close()
	}
	return err
}

func (c *child) close() {
	c.b.Close()
	c.hc.StopWatching()
}

// currentChild returns the current child, or nil once closed.
func (g *guard) currentChild() *child {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.current
}

func (g *guard) ResolverError(err error) {
	if c := g.currentChild(); c != nil {
		g.m.Serialize(func() { c.b.ResolverError(err) })
	}
}

func (g *guard) ExitIdle() {
	if c := g.currentChild(); c != nil {
		g.m.Serialize(c.b.ExitIdle)
	}
}

// UpdateSubConnState is never called: every SubConn has a StateListener.
func (g *guard) UpdateSubConnState(sc balancer.SubConn, s balancer.SubConnState) {
	logger.Errorf("%s: UpdateSubConnState(%v, %+v) called unexpectedly", g.name, sc, s)
}

// Close closes the child, then the manager, which releases whatever the
// child still holds and reports each as a leak.
func (g *guard) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	c := g.current
	g.current = nil
	g.mu.Unlock()
	g.rr.Close()
	if c != nil {
		g.m.Serialize(c.close)
	}
	policy.LogClose(logger.Errorf, g.m.Close(), "%s: child policy %s did not release every subchannel", g.name, childName(c))
}

func childName(c *child) string {
	if c == nil {
		return "(none)"
	}
	return c.name
}
