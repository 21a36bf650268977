package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"google.golang.org/grpc"
)

// A Fault names one of the faults real deployments see, as the soak makes
// it on loopback. Each runs in its own phase of the timeline.
type Fault string

// The faults, in the order the timeline runs them.
const (
	// FaultGoAway makes two backends (those the channel uses most) send
	// GOAWAY every 50ms (MaxConnectionAge) for the phase.
	FaultGoAway Fault = "goaway"
	// FaultDuplicate resolves a list that repeats an address: [A, A, B].
	FaultDuplicate Fault = "dup"
	// FaultOverlap resolves endpoints that share addresses:
	// [{A}, {A,B}, {B,C}].
	FaultOverlap Fault = "overlap"
	// FaultReset resets (TCP RST) the connections of the backends the
	// channel uses, one every 250ms, and lists first a backend that resets
	// every connection 200ms after accepting it.
	FaultReset Fault = "rst"
	// FaultFreeze adds a backend that accepts connections and never answers
	// (a server at its connection limit), listed first, and resets the
	// other backends' connections halfway so that clients reconnect through
	// it.
	FaultFreeze Fault = "freeze"
	// FaultFlap alternates the resolved list between two halves of the
	// backends every 200ms.
	FaultFlap Fault = "flap"
	// FaultResolverError makes the resolver report errors between good
	// updates.
	FaultResolverError Fault = "resolver-error"
	// FaultEmpty resolves an empty list for 150ms out of every 500ms.
	FaultEmpty Fault = "empty"
	// FaultRestart stops two backends (those the channel uses most) hard,
	// one after the other, and restarts each on the same port.
	FaultRestart Fault = "restart"
	// FaultTLS runs channels whose TLS handshakes fail (the backend's CA is
	// not trusted), several at once, replaced every 500ms.
	FaultTLS Fault = "tls"
	// FaultChurn creates and closes channels, one RPC each, from several
	// goroutines.
	FaultChurn Fault = "churn"
	// FaultExec starts short-lived child processes while channels dial,
	// use and close connections, and checks that no child holds a socket
	// of the process and that no connection to a backend stays ESTABLISHED
	// in the network namespace after its channel closed.
	FaultExec Fault = "exec"
	// FaultStarve runs a child soak under a lowered RLIMIT_NOFILE whose
	// resolver fails for long stretches, then recovers.
	FaultStarve Fault = "starve"
)

// AllFaults returns every fault of a run without xDS, in the order the
// timeline runs them. XDSFaults adds the control plane's own.
func AllFaults() []Fault {
	out := make([]Fault, len(faultTable))
	for i, s := range faultTable {
		out[i] = s.fault
	}
	return out
}

// Description says in one line how the fault is made.
func (f Fault) Description() string {
	if !f.valid() {
		return "unknown fault"
	}
	return specOf(f).description
}

func (f Fault) valid() bool {
	return slices.Contains(XDSFaults(), f)
}

// ParseFaults parses a comma-separated fault selection: names select faults
// ("goaway,rst"), names with a leading '-' exclude them ("-tls" is every
// fault but tls), "all" selects every fault. The result is in timeline
// order. An unknown name or an empty selection is an error. It selects
// among AllFaults; ParseXDSFaults among XDSFaults.
func ParseFaults(spec string) ([]Fault, error) { return parseFaults(spec, AllFaults()) }

// ParseXDSFaults is ParseFaults for a run under ResolverXDS: "all" and
// exclusions select among XDSFaults, the control plane's own faults
// included.
func ParseXDSFaults(spec string) ([]Fault, error) { return parseFaults(spec, XDSFaults()) }

func parseFaults(spec string, universe []Fault) ([]Fault, error) {
	include := map[Fault]bool{}
	exclude := map[Fault]bool{}
	all := false
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, excluded := strings.CutPrefix(item, "-")
		if name == "all" && !excluded {
			all = true
			continue
		}
		f := Fault(name)
		if !slices.Contains(universe, f) {
			if f.valid() {
				return nil, fmt.Errorf("soak: fault %q needs an xDS control plane (Resolver xds, --resolver xds)", name)
			}
			return nil, fmt.Errorf("soak: unknown fault %q (faults: all, %s)", name, faultNames(universe))
		}
		if excluded {
			exclude[f] = true
		} else {
			include[f] = true
		}
	}
	if len(include) == 0 {
		all = true
	}
	var out []Fault
	for _, f := range universe {
		if (all || include[f]) && !exclude[f] {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("soak: fault selection %q leaves no fault to run", spec)
	}
	return out, nil
}

func faultNames(faults []Fault) string {
	names := make([]string, len(faults))
	for i, f := range faults {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// Defaults for the zero values of Config.
const (
	DefaultDuration       = 30 * time.Second
	DefaultBackends       = 4
	DefaultPolicy         = roundrobin.Name
	DefaultWorkers        = 4
	DefaultStreams        = 2
	DefaultSampleInterval = 200 * time.Millisecond
	DefaultDrainTimeout   = time.Second
	DefaultRemovalSlack   = time.Second
	DefaultMaxFailureRate = 0.01
	DefaultRetryAttempts  = 8
	DefaultVerifyTimeout  = 10 * time.Second
)

// Limits on Config values.
const (
	MinBackends = 3
	MaxBackends = 32
	// MinPhase is the shortest phase a fault gets; Duration must leave at
	// least this much per selected fault after the quiet second at each end.
	MinPhase = 500 * time.Millisecond
	// maxPhase is the longest phase; longer runs repeat the timeline.
	maxPhase = 3 * time.Second
	// quiet is the fault-free time at the start and at the end of the
	// timeline.
	quiet = time.Second
)

// Config describes one soak run. The zero value is the default run: 30
// seconds of leakproof_round_robin on four backends with every fault.
type Config struct {
	// Duration is the length of the timeline: a quiet second, one phase per
	// fault (repeated when there is time), a quiet second. Setup, shutdown
	// and the final checks add a few seconds. Default 30s.
	Duration time.Duration

	// Backends is the number of regular backends, at least 3. The soak also
	// starts a frozen backend, a resetting backend and a TLS backend for the
	// faults that need them. Default 4.
	Backends int

	// Policy is the load-balancing policy of the channels under test, by its
	// registered name: leakproof_round_robin (the default),
	// leakproof_pick_first, grpc's round_robin or pick_first, or any policy
	// registered in the process; "leakproof_guard:<name>" runs a registered
	// policy under leakproof_guard (GuardedGRPCPolicies), with an
	// orphanTimeout of half DrainTimeout. ServiceConfig overrides it.
	Policy string

	// Compare, if set, names a second policy run side by side on its own
	// channel against the same backends with the same resolver updates and
	// a lighter load. Its numbers are reported for comparison and are not
	// part of the verdict.
	Compare string

	// Faults selects the faults to run (see ParseFaults); nil runs them all.
	Faults []Fault

	// Workers is the number of goroutines making unary RPCs, Streams the
	// number opening streams (server-streaming Hold and bidirectional
	// EchoStream, alternately). Defaults 4 and 2.
	Workers, Streams int

	// SampleInterval is how often goroutines, descriptors, sockets,
	// subchannels and RPC counters are sampled and the invariants checked.
	// Default 200ms.
	SampleInterval time.Duration

	// DrainTimeout is the drainTimeout given to the leakproof policies:
	// how long a removed subchannel's sockets may drain. Default 1s.
	DrainTimeout time.Duration

	// RemovalSlack is added to DrainTimeout to bound how long sockets to a
	// backend the resolver removed may stay open while the channel stays
	// open, and how long a closed channel's sockets may stay open. Default
	// 1s.
	RemovalSlack time.Duration

	// SocketLimit is the most sockets one channel may hold to one backend
	// outside GOAWAY and removal drain windows. 0 means 1 for the leakproof
	// policies and not checked (only reported) for others; negative means
	// not checked.
	SocketLimit int

	// MaxFailureRate is the largest fraction of RPCs that may fail after
	// their retries. 0 means DefaultMaxFailureRate (1%); negative means no
	// failure at all is allowed.
	MaxFailureRate float64

	// RetryAttempts bounds the attempts per RPC (go-grpc-middleware's retry
	// on UNAVAILABLE, exponential backoff from 20ms with jitter, at most
	// 500ms apart). Default 8.
	RetryAttempts uint

	// VerifyTimeout bounds how long the final checks wait for goroutines,
	// descriptors and sockets to return to the baseline. Default 10s.
	VerifyTimeout time.Duration

	// Trace, if not nil, receives the refcount trace of every channel of the
	// run as JSON lines (trace.NewWriter), for `leakproof trace
	// check` and trace.Read.
	Trace io.Writer

	// OnSample, if not nil, is called with each sample as it is taken, from
	// the sampling goroutine; it must return quickly.
	OnSample func(Sample)

	// Logf, if not nil, receives one line per phase start and per RPC that
	// failed after its retries (the first 20).
	Logf func(format string, args ...any)

	// ServiceConfig, if set, is the service config JSON of the channels
	// under test (the main channel, and the churned, exec and TLS-fault
	// channels): any registered policy with its parameters, the user's own
	// included. It overrides Policy: the policy it selects (as grpc selects
	// it: the first registered of loadBalancingConfig) decides the socket
	// limit and the per-policy checks, and, unless DrainTimeout is set, its
	// drainTimeout (and the guard's orphanTimeout, if longer) with
	// RemovalSlack bounds a removal. Run rejects a config grpc rejects.
	ServiceConfig string

	// DialOptions are added to every channel of the run (Compare's too),
	// after the soak's connect parameters, which they may override.
	// Interceptors (chained outside the soak's logging and retry
	// interceptors: each sees a call once, with its final result),
	// keepalive, stats handlers, per-RPC credentials and the like apply as
	// given. Options that would take over what the soak watches the
	// channel with are refused, naming the option, before anything starts:
	// a context dialer (grpc.WithContextDialer, WithDialer: set Dialer
	// instead, which the soak composes), transport credentials
	// (WithTransportCredentials, WithInsecure, WithCredentialsBundle: the
	// soak's are insecure, or with TLS the run's CA), resolvers
	// (WithResolvers: set Resolver) and service configs
	// (WithDefaultServiceConfig: set ServiceConfig; WithDisableServiceConfig).
	// A nil option, on which grpc.NewClient would panic, is refused too.
	DialOptions []grpc.DialOption

	// Dialer, if set, dials every socket of the run's channels: the
	// function a client gives grpc.WithContextDialer. The soak's socket
	// tracking (subconn.Dialer and the soak's books) wraps the conn it
	// returns, so it must be the plain dial (if your client uses
	// subconn.Dialer(base), give base) and return a conn on a real socket
	// (net.TCPConn, or one implementing syscall.Conn) for the descriptor
	// books to name it. Nil dials TCP.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)

	// RegisterServices, if set, registers the user's services on every
	// backend the soak starts (regular, frozen, resetting, TLS), beside the
	// soak's echo and health services, again on each restart.
	RegisterServices func(*grpc.Server)

	// Load, if set, is the unary load: each unary worker calls it in a
	// loop on the channel under test instead of the soak's Echo. Its RPCs
	// pass the soak's retry interceptor (UNAVAILABLE is retried as for
	// Echo); an error after the retries counts as a failed RPC, by status
	// code in Result.RPCs. The soak's streams keep running on the echo
	// service. Load must return when ctx is done.
	Load func(ctx context.Context, cc *grpc.ClientConn) error

	// Resolver is how the channels under test learn their backends:
	// ResolverManual (the default), ResolverDNS or ResolverXDS.
	Resolver Resolver

	// TLS makes every backend serve TLS with a certificate for 127.0.0.1
	// from a CA generated for the run, which every channel of the run
	// trusts (through subconn.Credentials, so that GOAWAYs are read above
	// TLS); the tls fault's channels trust another CA and keep failing.
	TLS bool

	// XDSWeightedLocalities, under ResolverXDS, runs the locality-weighted
	// configuration the docs recommend: each EDS assignment splits the
	// endpoints between two localities of one priority, z1 weighted 1 and
	// z2 weighted 3, and the Cluster names the policy under test (and
	// Compare's) as the endpoint-picking policy of a WrrLocality, so grpc's
	// xds_wrr_locality weights the localities and runs one instance of the
	// policy per locality. grpc's own xDS round robin is already that.
	XDSWeightedLocalities bool

	// XDS is ResolverXDS.
	//
	// Deprecated: set Resolver to ResolverXDS. Run treats XDS as that,
	// and rejects XDS with another Resolver.
	XDS bool
}

// A Resolver names how the channels under test learn their backends.
type Resolver string

// The resolvers.
const (
	// ResolverManual gives each channel a resolver/manual resolver that
	// the resolver-side faults update directly.
	ResolverManual Resolver = "manual"
	// ResolverDNS resolves through grpc's dns resolver and a DNS server
	// embedded on 127.0.0.1: the channels under test dial
	// dns://127.0.0.1:PORT/NAME:PORT, the backends listen on one port at
	// 127.0.0.2, 127.0.0.3, … and the resolver-side faults become DNS
	// answers (overlap is skipped: DNS cannot express it). grpc asks DNS
	// again only when the policy or a lost connection asks it to; the run
	// lowers grpc's minimum interval between resolutions to
	// DNSMinResolutionInterval for the process. A removal counts from the
	// channel's first DNS answer without the backend (Removal.AnsweredAt);
	// one it never learned of is RemovalUnasked, not a leak.
	ResolverDNS Resolver = "dns"
	// ResolverXDS runs the channels under an embedded xDS control plane (a
	// go-control-plane ADS server on 127.0.0.1): every channel dials
	// xds:///…, the control plane selects the policy per cluster through a
	// TypedStruct, and the resolver-side faults reach the channels as xDS
	// pushes. XDSFaults adds the control plane's own faults; nil Faults
	// runs them all.
	ResolverXDS Resolver = "xds"
)

// Resolvers lists the resolvers Run accepts.
func Resolvers() []Resolver { return []Resolver{ResolverManual, ResolverDNS, ResolverXDS} }

// xds reports whether the run is under the xDS control plane. Valid after
// withDefaults.
func (c *Config) xds() bool { return c.Resolver == ResolverXDS }

// channelServiceConfig is the service config of the channels under test.
// Valid after withDefaults.
func (c *Config) channelServiceConfig() string {
	if c.ServiceConfig != "" {
		return c.ServiceConfig
	}
	return serviceConfig(c.Policy, c.DrainTimeout)
}

// Validate reports what is wrong with c, after the defaults are applied:
// the error Run would return without starting anything.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns c with zero values replaced and validates it.
func (c Config) withDefaults() (Config, error) {
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Backends == 0 {
		c.Backends = DefaultBackends
	}
	var errs []error
	switch {
	case c.XDS && c.Resolver == "":
		c.Resolver = ResolverXDS
	case c.XDS && c.Resolver != ResolverXDS:
		errs = append(errs, fmt.Errorf("XDS (deprecated) is Resolver %q, not %q", ResolverXDS, c.Resolver))
	case c.Resolver == "":
		c.Resolver = ResolverManual
	}
	c.XDS = c.Resolver == ResolverXDS
	if c.XDSWeightedLocalities && !c.XDS {
		errs = append(errs, fmt.Errorf("XDSWeightedLocalities needs Resolver %q", ResolverXDS))
	}
	if !slices.Contains(Resolvers(), c.Resolver) {
		errs = append(errs, fmt.Errorf("unknown resolver %q (resolvers: manual, dns, xds)", c.Resolver))
	} else if c.Resolver == ResolverDNS && !dnsAvailable {
		errs = append(errs, errors.New("resolver dns is not available yet"))
	}
	if c.Policy == "" {
		c.Policy = DefaultPolicy
	}
	if len(c.DialOptions) > 0 {
		if err := dialOptionsReadable(); err != nil {
			errs = append(errs, err)
		} else if err := checkDialOptions(c.DialOptions); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ServiceConfig != "" {
		sel, err := selectPolicy(c.ServiceConfig)
		if err != nil {
			errs = append(errs, err)
		} else {
			c.Policy = sel.policy
			if c.DrainTimeout == 0 && sel.drain > 0 {
				c.DrainTimeout = sel.drain
			}
		}
	}
	if c.Faults == nil {
		c.Faults = AllFaults()
		if c.xds() {
			c.Faults = XDSFaults()
		}
		if c.XDSWeightedLocalities {
			c.Faults = slices.DeleteFunc(c.Faults, func(f Fault) bool { return f == FaultXDSLocalityDup })
		}
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Streams == 0 {
		c.Streams = DefaultStreams
	}
	if c.SampleInterval == 0 {
		c.SampleInterval = DefaultSampleInterval
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.RemovalSlack == 0 {
		c.RemovalSlack = DefaultRemovalSlack
	}
	if c.SocketLimit == 0 && isLeakproof(c.Policy) {
		c.SocketLimit = 1
	}
	if c.MaxFailureRate == 0 {
		c.MaxFailureRate = DefaultMaxFailureRate
	}
	if c.RetryAttempts == 0 {
		c.RetryAttempts = DefaultRetryAttempts
	}
	if c.VerifyTimeout == 0 {
		c.VerifyTimeout = DefaultVerifyTimeout
	}

	if c.Backends < MinBackends || c.Backends > MaxBackends {
		errs = append(errs, fmt.Errorf("backends %d must be between %d and %d", c.Backends, MinBackends, MaxBackends))
	}
	for _, p := range []string{c.Policy, c.Compare} {
		if p != "" {
			if err := policyRegistered(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	seen := map[Fault]bool{}
	for _, f := range c.Faults {
		if !f.valid() {
			errs = append(errs, fmt.Errorf("unknown fault %q (faults: %s)", f, faultNames(XDSFaults())))
		} else if !c.xds() && !slices.Contains(AllFaults(), f) {
			errs = append(errs, fmt.Errorf("fault %q needs an xDS control plane (Resolver %q)", f, ResolverXDS))
		} else if f == FaultXDSLocalityDup && c.XDSWeightedLocalities {
			errs = append(errs, fmt.Errorf("fault %q lists one backend in two localities, which WrrLocality gives one subchannel per locality by design: not run with XDSWeightedLocalities", f))
		}
		if seen[f] {
			errs = append(errs, fmt.Errorf("fault %q selected twice", f))
		}
		seen[f] = true
	}
	if len(c.Faults) == 0 {
		errs = append(errs, errors.New("no fault selected"))
	}
	if c.Duration < 0 || c.Workers < 0 || c.Streams < 0 || c.SampleInterval < 0 || c.DrainTimeout < 0 || c.RemovalSlack < 0 || c.VerifyTimeout < 0 {
		errs = append(errs, errors.New("durations and counts must not be negative"))
	}
	if c.Workers+c.Streams == 0 {
		errs = append(errs, errors.New("no load: Workers and Streams are both zero"))
	}
	if c.MaxFailureRate > 1 || math.IsNaN(c.MaxFailureRate) {
		errs = append(errs, fmt.Errorf("max failure rate %v must be at most 1", c.MaxFailureRate))
	}
	if c.DrainTimeout > 24*time.Hour {
		errs = append(errs, fmt.Errorf("drain timeout %v is longer than 24h", c.DrainTimeout))
	}
	if len(c.Faults) > 0 && c.Duration > 0 {
		if need := minDuration(len(c.Faults)); c.Duration < need {
			errs = append(errs, fmt.Errorf("duration %v is too short for %d fault(s): need at least %v (or select fewer faults)", c.Duration, len(c.Faults), need))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("soak: invalid config: %w", err)
	}
	return c, nil
}

func minDuration(faults int) time.Duration {
	return 2*quiet + time.Duration(faults)*MinPhase
}

// isLeakproof reports whether policy is one of the project's own, or any
// policy under the guard, which take a drainTimeout and keep one socket per
// backend.
func isLeakproof(policy string) bool {
	return policy == roundrobin.Name || policy == pickfirst.Name || strings.HasPrefix(policy, guardPrefix)
}

// bound is how long sockets to a removed backend, or of a closed channel,
// may stay open.
func (c *Config) bound() time.Duration { return c.DrainTimeout + c.RemovalSlack }
