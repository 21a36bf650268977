package guard

import (
	"encoding/json"
	"time"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"
)

// An Option configures a policy guarded by Wrap, as leakproof_guard's config
// fields do. Each option means what its field means, so a policy behaves
// the same whichever sets it: a duration of zero or less is the default
// (for WithReresolveInterval, off), as omitting the field is, and a value
// past the field's limits is held within them.
type Option func(*options)

type options struct {
	orphanTimeout time.Duration
	orphans       subconn.OrphanMode
	drainTimeout  time.Duration
	traceRing     int
	reresolve     time.Duration
}

// WithOrphanTimeout sets how long an address may be absent from the
// resolver state while the policy still holds a subchannel to it before it
// is an orphan (orphanTimeout; default subconn.DefaultOrphanTimeout, at most
// 24h).
func WithOrphanTimeout(d time.Duration) Option { return func(o *options) { o.orphanTimeout = d } }

// WithOrphans sets what happens to an orphan (orphans; default
// subconn.ReclaimOrphans).
func WithOrphans(mode subconn.OrphanMode) Option { return func(o *options) { o.orphans = mode } }

// WithDrainTimeout sets how long a shut-down subchannel's sockets may drain
// before they are force-closed (drainTimeout; default
// subconn.DefaultDrainTimeout, at most 24h). Like the config, it cannot turn
// the bound off; a manager of one's own can (subconn.WithDrainTimeout).
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// WithTraceRing sets how many recent events the manager keeps
// (traceRingSize; default subconn.DefaultTraceRing, which a negative n
// also means; at most 1<<20).
func WithTraceRing(n int) Option { return func(o *options) { o.traceRing = n } }

// WithReresolveInterval makes the policy ask the resolver to resolve again
// every d while it is READY (reresolveInterval; default off, d is held
// within [1s, 24h]). See leakproof_guard's reresolveInterval.
func WithReresolveInterval(d time.Duration) Option { return func(o *options) { o.reresolve = d } }

// Wrap returns a builder of the policy b builds, under the guard: same name,
// same config (parsed by b's own parser), every subchannel it creates owned
// by one manager and its orphans handled as opts say. Register it instead of
// b to ship a policy that is leak-proof wherever it is named:
//
//	func init() { balancer.Register(guard.Wrap(myBuilder{})) }
//
// Wrap does not register anything, and b is used directly, never looked up
// by name.
func Wrap(b balancer.Builder, opts ...Option) balancer.Builder {
	o := options{orphans: subconn.ReclaimOrphans, traceRing: subconn.DefaultTraceRing}
	for _, opt := range opts {
		opt(&o)
	}
	o = o.resolved()
	w := wrapped{child: b, o: o}
	if p, ok := b.(balancer.ConfigParser); ok {
		return wrappedParser{wrapped: w, p: p}
	}
	return w
}

// resolved gives each option the meaning of its config field: the default
// for zero or less (a negative ring size), and the field's limits.
func (o options) resolved() options {
	within := func(d, def, lo, hi time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return min(max(d, lo), hi)
	}
	o.orphanTimeout = within(o.orphanTimeout, subconn.DefaultOrphanTimeout, 0, policy.MaxOrphanTimeout)
	o.drainTimeout = within(o.drainTimeout, subconn.DefaultDrainTimeout, 0, policy.MaxDrainTimeout)
	o.reresolve = within(o.reresolve, 0, policy.MinReresolveInterval, policy.MaxReresolveInterval)
	if o.traceRing < 0 {
		o.traceRing = subconn.DefaultTraceRing
	}
	o.traceRing = min(o.traceRing, policy.MaxTraceRingSize)
	return o
}

type wrapped struct {
	child balancer.Builder
	o     options
}

func (w wrapped) Name() string { return w.child.Name() }

func (w wrapped) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	m := subconn.NewManager(cc, subconn.WithTarget(opts.Target.String()), subconn.WithDrainTimeout(w.o.drainTimeout), subconn.WithTraceRing(w.o.traceRing))
	fixed := &lbConfig{child: w.child, orphanTimeout: w.o.orphanTimeout, orphans: w.o.orphans, reresolve: w.o.reresolve}
	return newGuard(cc, opts, w.child.Name(), fixed, m)
}

// wrappedParser is a wrapped policy whose child parses its config.
type wrappedParser struct {
	wrapped
	p balancer.ConfigParser
}

func (w wrappedParser) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return w.p.ParseConfig(js)
}
