// Package pickfirst registers leakproof_pick_first: grpc-go's pick_first,
// with every subchannel owned by a subconn.Manager. Import it and name the
// policy in your service config:
//
//	{"loadBalancingConfig": [{"leakproof_pick_first": {}}]}
//
// The policy is grpc-go's own pick_first (addresses tried in order or
// shuffled, Happy Eyeballs, sticky TRANSIENT_FAILURE, IDLE after a lost
// connection and reconnect on the next pick, health listener) running on a
// manager's ClientConn: every subchannel it creates is reference counted and
// shut down exactly once, its sockets are tracked when the channel dials
// through subconn.Dialer, and every step is in the refcount trace.
//
// Config (all optional; under leakproof's name unknown fields and bad values
// are errors; under grpc's name, after ReplaceGRPCPolicy, every config grpc's
// pick_first accepts is accepted, and bad values of these fields are logged
// and ignored):
//
//	shuffleAddressList  bool    shuffle the address list, as grpc's pick_first
//	drainTimeout        string  Go duration, (0, 24h]; default 30s (subconn.DefaultDrainTimeout)
//	traceRingSize       int     events kept for the admin service, [0, 1048576]; default 512
//	reresolveInterval   string  Go duration, [1s, 24h]; default off: while the policy is READY,
//	                            ask the resolver to resolve again this often
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
package pickfirst

import (
	"encoding/json"
	"fmt"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/serviceconfig"
)

// Name is the policy's name in service configs.
const Name = "leakproof_pick_first"

var logger = grpclog.Component("leakproof-pick-first")

func init() { balancer.Register(builder{name: Name}) }

// ReplaceGRPCPolicy registers this policy under grpc's own name,
// "pick_first", as well. Every service config parsed after the call that
// names pick_first, or names no policy at all ("{}"), gets this policy:
// configs from the resolver and from grpc.WithDefaultServiceConfig alike.
//
// A channel with no service config at all is not reached: grpc parsed its
// built-in default in its own init, before any importer's init could run,
// and such a channel stays on grpc's pick_first. Give those channels
// grpc.WithDefaultServiceConfig("{}") (or name leakproof_pick_first).
//
// Consequences: other
// policies that build pick_first children by name (grpc's own round_robin,
// weighted_round_robin, ring_hash and xDS policies) get this policy as their
// children, each child with its own manager; and the replacement cannot be
// undone. Call it from an init function or from main before any ClientConn
// is created: grpc's balancer registry is not safe for concurrent use.
func ReplaceGRPCPolicy() { balancer.Register(builder{name: "pick_first"}) }

type builder struct{ name string }

func (b builder) Name() string { return b.name }

func (b builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	m := subconn.NewManager(cc, subconn.WithTarget(opts.Target.String()))
	rr := policy.NewReresolver(cc)
	pf := &pickFirst{m: m, rr: rr, name: b.name}
	pf.Balancer = policy.GRPCPickFirst.Build(m.ClientConn(&fixedPickerCC{ClientConn: rr}, "pick_first"), opts)
	return pf
}

// ParseConfig is strict under leakproof's name. Under grpc's name it
// accepts exactly the configs grpc's pick_first accepts (unknown fields
// included), so ReplaceGRPCPolicy never turns a working service config into
// an error.
func (b builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	if b.name == Name {
		return policy.Parse(b.name, js, policy.Shuffle, policy.Strict)
	}
	if p, ok := policy.GRPCPickFirst.(balancer.ConfigParser); ok {
		if _, err := p.ParseConfig(js); err != nil {
			return nil, err
		}
	}
	return policy.Parse(b.name, js, policy.Shuffle, policy.GRPCNames)
}

// pickFirst is grpc's pick_first on a manager.
type pickFirst struct {
	balancer.Balancer // grpc's pick_first
	m                 *subconn.Manager
	rr                *policy.Reresolver // the channel, for pick_first's states
	name              string
}

func (b *pickFirst) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, err := policy.ConfigOf(b.name, s.BalancerConfig)
	if err != nil {
		return err
	}
	cfg.Apply(b.m)
	b.m.SetPlacement(subconn.PlacementOf(s.ResolverState))
	b.rr.SetInterval(cfg.Reresolve())
	child, err := policy.PickFirstChildConfig(cfg.ShuffleAddressList)
	if err != nil {
		return fmt.Errorf("%s: %v", b.name, err)
	}
	s.BalancerConfig = child
	return b.Balancer.UpdateClientConnState(s)
}

func (b *pickFirst) Close() {
	b.rr.Close()
	b.Balancer.Close()
	policy.LogClose(logger.Errorf, b.m.Close(), "%s", b.name)
}

// fixedPickerCC turns pick_first's READY picker into one that returns the
// real SubConn directly, so a pick costs what grpc's own does.
type fixedPickerCC struct{ balancer.ClientConn }

func (c *fixedPickerCC) UpdateState(s balancer.State) {
	if s.ConnectivityState == connectivity.Ready {
		if sc, ok := policy.ReadySubConn(s.Picker); ok {
			s.Picker = policy.NewFixedPicker(sc)
		}
	}
	c.ClientConn.UpdateState(s)
}
