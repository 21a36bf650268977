package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

// Under Config.XDS every channel of the run dials xds:///soak-rN-<service>
// through an xDS resolver whose bootstrap points at an embedded
// go-control-plane ADS server (internal/xdsplane) on 127.0.0.1. The
// control plane publishes four services:
//
//	main     → cluster main-a (main-b during a cluster switch), policy Config.Policy
//	compare  → cluster compare-a (-b), policy Config.Compare, the same endpoints
//	tls      → cluster tls, the TLS backend, policy Config.Policy
//	churn    → main's cluster (the churned channels share its endpoints)
//
// The policy is chosen per cluster by a TypedStruct holding its JSON config,
// except grpc's round_robin, which is grpc's own xDS round robin (the
// Cluster's lb_policy ROUND_ROBIN, no load_balancing_policy). A resolver
// state becomes one locality of the routed cluster's ClusterLoadAssignment:
// addresses one endpoint each, endpoints with several addresses as
// additional_addresses. grpc's xDS client NACKs an address listed twice, so
// a repeated address is spelled differently each time (127.0.0.1:P,
// [::ffff:127.0.0.1]:P, [::ffff:7f00:1]:P, …): the same backend, as the
// duplicate and overlap faults mean it.

const (
	// xdsWait bounds the wait for a client to accept or reject a push.
	xdsWait = 5 * time.Second
	// xdsNACKsKept bounds the NACK messages a phase keeps as evidence.
	xdsNACKsKept = 2
	// xdsUnregistered names no registered policy: a Cluster selecting only
	// it is NACKed (the NACK fault, for policies that take any config).
	xdsUnregistered = "leakproof_soak_unregistered"
)

// runPrefix returns the target prefix of run n's channels.
func runPrefix(res Resolver, n uint64) string {
	if res == ResolverXDS {
		return fmt.Sprintf("xds:///soak-r%d-", n)
	}
	return fmt.Sprintf("soak:///r%d/", n)
}

// underXDS is the suffix that marks a result under xDS in reports.
func (r *Result) underXDS() string {
	switch {
	case r.XDSWeightedLocalities:
		return " under xDS, localities weighted 1:3 (WrrLocality)"
	case r.XDS:
		return " under xDS"
	}
	return ""
}

// xdsPhase is what the control plane did in one phase. Guarded by r.mu.
type xdsPhase struct {
	pushes       int
	nacks        int
	nackMessages []string // the first xdsNACKsKept, "Cluster: message"
	restarts     int
	ackedRestart bool // a push after a restart was accepted
	switches     int  // cluster switches made (and undone)
	dupAccepted  bool // a backend spelled twice in two localities was accepted
	unconfirmed  int  // pushes the client neither accepted nor rejected within xdsWait
}

// String says what the control plane did, for a phase's evidence.
func (p *xdsPhase) String() string {
	if p.pushes == 0 && p.restarts == 0 {
		return ""
	}
	parts := []string{"control plane: " + plural(p.pushes, "xDS update")}
	if p.nacks > 0 {
		parts = append(parts, fmt.Sprintf("%s (%s)", plural(p.nacks, "NACK"), strings.Join(p.nackMessages, "; ")))
	}
	if p.restarts > 0 {
		s := plural(p.restarts, "restart")
		if p.ackedRestart {
			s += ", a push after it accepted"
		}
		parts = append(parts, s)
	}
	if p.switches > 0 {
		parts = append(parts, plural(p.switches, "cluster switch")+" and back")
	}
	if p.dupAccepted {
		parts = append(parts, "one backend in two localities, spelled twice, accepted")
	}
	if p.unconfirmed > 0 {
		parts = append(parts, fmt.Sprintf("%d push(es) neither accepted nor rejected within %v", p.unconfirmed, xdsWait))
	}
	return strings.Join(parts, ", ")
}

// xdsSide is one channel under test's service: main or compare.
type xdsSide struct {
	service string // listener name and target host
	policy  xdsplane.Policy
}

// xdsFeed is the embedded control plane and what it publishes.
type xdsFeed struct {
	// Initialized by newXDSFeed, read-only after.
	r     *runner
	srv   *xdsplane.Server
	rb    resolver.Builder
	host  string    // service name prefix, "soak-rN-"
	sides []xdsSide // main, then compare if any
	tls   xdsplane.ClusterSpec

	mu sync.Mutex // guards the model below and orders pushes
	// route is the cluster suffix the services route to: "a", or "b"
	// during a cluster switch.
	route string
	// eds is what each cluster suffix lists; a suffix absent is not
	// published.
	eds map[string][]xdsplane.Locality
	// gap adds a locality two priorities down, which the client rejects
	// ("priority 1 missing"): the xDS form of a resolver error. Its one
	// endpoint is spelled apart from the others, so that the gap is the
	// only fault the client finds.
	gap bool
	// badConfig gives main's clusters a policy config the client rejects.
	badConfig bool
	// last is the version of the latest push.
	last string
}

func newXDSFeed(r *runner) (*xdsFeed, error) {
	srv, err := xdsplane.Start(xdsplane.Options{})
	if err != nil {
		return nil, fmt.Errorf("soak: xDS control plane: %w", err)
	}
	rb, err := srv.Resolver()
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("soak: xDS control plane: %w", err)
	}
	host := strings.TrimPrefix(r.prefix, "xds:///")
	x := &xdsFeed{
		r: r, srv: srv, rb: rb, host: host,
		sides: []xdsSide{{service: host + "main", policy: r.cfg.weighted(r.cfg.mainXDSPolicy())}},
		tls: xdsplane.ClusterSpec{Name: host + "tls", Policy: r.cfg.mainXDSPolicy(),
			Localities: localities(addrState(r.tlsB))},
		route: "a",
		eds:   map[string][]xdsplane.Locality{"a": r.cfg.localities(r.baseState())},
	}
	if r.cfg.Compare != "" {
		x.sides = append(x.sides, xdsSide{service: host + "compare", policy: r.cfg.weighted(xdsPolicy(r.cfg.Compare, r.cfg.DrainTimeout))})
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, err := x.pushLocked(); err != nil {
		srv.Close()
		return nil, err
	}
	return x, nil
}

// xdsPolicy is the Cluster policy that selects policy: grpc's own xDS
// round robin for round_robin, a TypedStruct with policyConfig otherwise.
func xdsPolicy(policy string, drain time.Duration) xdsplane.Policy {
	if policy == "round_robin" {
		return xdsplane.Policy{}
	}
	name, cfg := policyConfig(policy, drain)
	return xdsplane.Policy{Name: name, Config: cfg}
}

// weighted returns p as WrrLocality's endpoint-picking policy under
// XDSWeightedLocalities (grpc's xDS round robin, no policy, already is).
func (c *Config) weighted(p xdsplane.Policy) xdsplane.Policy {
	p.WrrLocality = c.XDSWeightedLocalities && p.Name != ""
	return p
}

// localities is the package's localities, or under XDSWeightedLocalities
// two: z1 weighted 1 and z2 weighted 3. Each backend lives in one locality,
// as in a real deployment: the backends alternate between the two in order
// of first appearance, a repeat stays with its first listing, and every
// address of a multi-address endpoint is in z1, so no fault but
// xds-locality-dup lists a backend in both (which WrrLocality would give
// two subchannels, by design).
func (c *Config) localities(st resolver.State) []xdsplane.Locality {
	if !c.XDSWeightedLocalities {
		return localities(st)
	}
	zone := map[string]int{}
	for _, ep := range st.Endpoints {
		if len(ep.Addresses) > 1 {
			for _, a := range ep.Addresses {
				zone[a.Addr] = 0
			}
		}
	}
	next := 0
	pick := func(addr string) int {
		z, ok := zone[addr]
		if !ok {
			z, next = next, 1-next
			zone[addr] = z
		}
		return z
	}
	var halves [2]resolver.State
	for _, a := range st.Addresses {
		z := pick(a.Addr)
		halves[z].Addresses = append(halves[z].Addresses, a)
	}
	for _, ep := range st.Endpoints {
		z := 0
		if len(ep.Addresses) == 1 {
			z = pick(ep.Addresses[0].Addr)
		}
		halves[z].Endpoints = append(halves[z].Endpoints, ep)
	}
	seen := map[string]int{}
	var out []xdsplane.Locality
	for z, name := range []string{"z1", "z2"} {
		if len(halves[z].Addresses)+len(halves[z].Endpoints) == 0 {
			continue
		}
		l := spelled(halves[z], seen)
		l.Name, l.Weight = name, uint32(1+2*z)
		out = append(out, l)
	}
	if out == nil {
		return []xdsplane.Locality{}
	}
	return out
}

// mainXDSPolicy is the Cluster policy of the channels under test: the
// entry ServiceConfig selects, or xdsPolicy of Policy.
func (c *Config) mainXDSPolicy() xdsplane.Policy {
	if c.ServiceConfig == "" {
		return xdsPolicy(c.Policy, c.DrainTimeout)
	}
	var top struct {
		LoadBalancingConfig []lbEntry `json:"loadBalancingConfig"`
	}
	_ = json.Unmarshal([]byte(c.ServiceConfig), &top) // validated by withDefaults
	name, cfg := firstRegistered(top.LoadBalancingConfig)
	if name == "" {
		return xdsPolicy(c.Policy, c.DrainTimeout)
	}
	return xdsplane.Policy{Name: name, Config: string(cfg)}
}

// rejected returns a policy config the client NACKs: a drainTimeout the
// leakproof policies and the guard reject, or, for a policy that takes any
// config, only a policy nobody registered.
func rejected(p xdsplane.Policy) xdsplane.Policy {
	if !isLeakproof(p.Name) && p.Name != guard.Name {
		return xdsplane.Policy{Name: xdsUnregistered}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(p.Config), &m); err != nil || m == nil {
		m = map[string]any{}
	}
	m["drainTimeout"] = "forever"
	b, _ := json.Marshal(m) // a map of JSON values always marshals
	return xdsplane.Policy{Name: p.Name, Config: string(b)}
}

func (x *xdsFeed) dial(c *client, kind, _ string, _ resolver.State) (string, []grpc.DialOption, error) {
	svc := map[string]string{kindMain: "main", kindCompare: "compare", kindTLS: "tls", kindChurn: "churn"}[kind]
	if svc == "" {
		return "", nil, fmt.Errorf("no xDS service for a %s channel", kind)
	}
	return "xds:///" + x.host + svc, []grpc.DialOption{grpc.WithResolvers(x.rb)}, nil
}

func (x *xdsFeed) update(st resolver.State) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.eds[x.route] = x.r.cfg.localities(st)
	if _, err := x.pushLocked(); err != nil {
		x.r.problem("soak: xDS push: %v", err)
	}
}

// reportError pushes an EDS update the client rejects, and waits for the
// NACK: grpc's xDS client keeps the last good assignment and only logs the
// error (no policy sees it), which is what a resolver error is under xDS.
func (x *xdsFeed) reportError(error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gap = true
	_, err := x.pushNACKedLocked(xdsplane.EndpointType)
	x.gap = false
	if err != nil {
		x.r.problem("soak: xDS: %v", err)
	}
}

func (x *xdsFeed) close() { x.srv.Close() }

// pushLocked publishes the model and returns its version. Caller must hold
// x.mu.
func (x *xdsFeed) pushLocked() (string, error) {
	res, err := x.resourcesLocked()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), xdsWait)
	defer cancel()
	v, err := x.srv.Update(ctx, res)
	if err != nil {
		return "", err
	}
	x.last = v
	x.r.inPhase(func(p *phaseRun) { p.xds.pushes++ })
	return v, nil
}

// pushNACKedLocked publishes the model, which the client must reject, and
// waits for its NACK of typeURL. Caller must hold x.mu.
func (x *xdsFeed) pushNACKedLocked(typeURL string) (xdsplane.NACK, error) {
	skip := 0
	for _, n := range x.srv.NACKs() {
		if n.TypeURL == typeURL {
			skip++
		}
	}
	if _, err := x.pushLocked(); err != nil {
		return xdsplane.NACK{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), xdsWait)
	defer cancel()
	n, err := x.srv.WaitNACK(ctx, typeURL, skip)
	if err != nil {
		x.r.inPhase(func(p *phaseRun) { p.xds.unconfirmed++ })
		return n, err
	}
	x.r.inPhase(func(p *phaseRun) {
		p.xds.nacks++
		if len(p.xds.nackMessages) < xdsNACKsKept {
			p.xds.nackMessages = append(p.xds.nackMessages, fmt.Sprintf("%s: %s", typeName(typeURL), oneLine(n.Message, 120)))
		}
	})
	return n, nil
}

// waitAcked waits until every client holds version v of typeURL.
func (x *xdsFeed) waitAcked(typeURL, v string) error {
	ctx, cancel := context.WithTimeout(context.Background(), xdsWait)
	defer cancel()
	return x.srv.WaitAcked(ctx, typeURL, v)
}

// resourcesLocked builds the resources of the model. Caller must hold x.mu.
func (x *xdsFeed) resourcesLocked() (xdsplane.Resources, error) {
	var sets []xdsplane.Resources
	for i, side := range x.sides {
		var specs []xdsplane.ClusterSpec
		for _, suffix := range []string{"a", "b"} {
			locs, ok := x.eds[suffix]
			if !ok {
				continue
			}
			if x.gap && suffix == x.route {
				locs = append(append([]xdsplane.Locality(nil), locs...),
					xdsplane.Locality{Name: "gap", Priority: 2, Endpoints: []string{spelling(x.r.regular[0].Addr(), map[string]int{x.r.regular[0].Addr(): 1})}})
			}
			pol := side.policy
			if x.badConfig && i == 0 {
				pol = rejected(pol)
			}
			specs = append(specs, xdsplane.ClusterSpec{Name: side.service + "-" + suffix, Policy: pol, Localities: locs})
		}
		res, err := xdsplane.Service(side.service, side.service+"-"+x.route, specs...)
		if err != nil {
			return xdsplane.Resources{}, err
		}
		sets = append(sets, res)
	}
	tls, err := xdsplane.Service(x.tls.Name, x.tls.Name, x.tls)
	if err != nil {
		return xdsplane.Resources{}, err
	}
	churn, err := xdsplane.Service(x.host+"churn", x.sides[0].service+"-"+x.route)
	if err != nil {
		return xdsplane.Resources{}, err
	}
	return xdsplane.Merge(append(sets, tls, churn)...), nil
}

// inPhase applies f to the phase running now, if any.
func (r *runner) inPhase(f func(p *phaseRun)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		f(r.cur)
	}
}

// xdsFeed returns the run's control plane; the xDS-only faults run only
// under Config.XDS.
func (r *runner) xdsFeed() *xdsFeed { return r.feed.(*xdsFeed) }

// localities turns a resolver state into one locality: each address an
// endpoint, each multi-address endpoint an endpoint with
// additional_addresses, every repeated address spelled differently.
func localities(st resolver.State) []xdsplane.Locality {
	if len(st.Addresses)+len(st.Endpoints) == 0 {
		return []xdsplane.Locality{}
	}
	l := spelled(st, map[string]int{})
	l.Name = "z1"
	return []xdsplane.Locality{l}
}

// spelled lists st's addresses as endpoints and its multi-address endpoints
// as groups, every address seen before spelled differently.
func spelled(st resolver.State, seen map[string]int) xdsplane.Locality {
	var l xdsplane.Locality
	for _, a := range st.Addresses {
		l.Endpoints = append(l.Endpoints, spelling(a.Addr, seen))
	}
	for _, ep := range st.Endpoints {
		var g []string
		for _, a := range ep.Addresses {
			g = append(g, spelling(a.Addr, seen))
		}
		l.Groups = append(l.Groups, g)
	}
	return l
}

// spelling returns addr as written the first time it is seen, and another
// spelling of the same IPv4 address each time after (up to four).
func spelling(addr string, seen map[string]int) string {
	n := seen[addr]
	seen[addr]++
	ap, err := netip.ParseAddrPort(addr)
	if n == 0 || err != nil || !ap.Addr().Is4() {
		return addr
	}
	b := ap.Addr().As4()
	hex := fmt.Sprintf("%x:%x", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]))
	forms := []string{"::ffff:" + ap.Addr().String(), "::ffff:" + hex, "0:0:0:0:0:ffff:" + hex}
	if n > len(forms) {
		return addr // a fifth listing is NACKed as a duplicate
	}
	return fmt.Sprintf("[%s]:%d", forms[n-1], ap.Port())
}

// typeName is the short name of an xDS resource type.
func typeName(typeURL string) string {
	switch typeURL {
	case xdsplane.ListenerType:
		return "Listener"
	case xdsplane.RouteType:
		return "RouteConfiguration"
	case xdsplane.ClusterType:
		return "Cluster"
	case xdsplane.EndpointType:
		return "ClusterLoadAssignment"
	}
	return typeURL
}
