package soak

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Backend roles.
const (
	roleRegular   = "regular"
	roleFrozen    = "frozen"
	roleResetting = "resetting"
	roleTLS       = "tls"
)

const (
	// rpcTimeout bounds one RPC with all its retries.
	rpcTimeout = 10 * time.Second
	// readyTimeout bounds the wait for the first RPC of a channel.
	readyTimeout = 10 * time.Second
	// goAwayGrace is MaxConnectionAgeGrace during a GOAWAY storm.
	goAwayGrace = 100 * time.Millisecond
	// maxFailuresKept bounds Result.Failures.
	maxFailuresKept = 20
	// maxListed bounds the evidence listed in one check.
	maxListed = 20
)

var runs atomic.Uint64

// frozenOptions start the frozen backend: frozen (until its phase thaws
// it), noticing the clients that leave. A test replaces them with a backend
// that holds connections until shutdown, to see the in-run checks catch it.
var frozenOptions = []testbackend.Option{testbackend.Frozen()}

// Run starts the backends, runs the timeline of faults under RPC load,
// closes everything and checks that nothing leaked. It returns an error
// (and no result) for an invalid Config or when /proc cannot be read, and
// an error with a result when the backends or the channel under test could
// not start or ctx was cancelled: the result then covers what ran, and
// everything started has been closed. A leak is not an error: it is a
// Result whose Pass is false.
//
// Run reads the goroutines, descriptors and sockets of the whole process:
// run one soak at a time, and not beside tests that start or stop
// goroutines.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	base, err := leaktest.Take()
	if err != nil {
		return nil, fmt.Errorf("soak: the soak reads sockets from /proc: %w", err)
	}
	r := &runner{
		cfg:      cfg,
		base:     base,
		start:    time.Now(),
		prefix:   fmt.Sprintf("soak:///r%d/", runs.Add(1)),
		socks:    newSockTracker(),
		trace:    subconn.NewTraceChecker(),
		inRun:    newInRun(),
		names:    map[netip.AddrPort]string{},
		present:  map[string]bool{},
		lastGone: map[string]time.Time{},
		streak:   map[string]int{},
	}
	r.mainTgt = r.prefix + "main"
	return r.run(ctx)
}

// runner is one soak run.
type runner struct {
	// Initialized by Run and setup, read-only after.
	cfg      Config
	base     *leaktest.Snapshot
	start    time.Time
	prefix   string // target prefix of every channel of the run
	mainTgt  string // the main channel's target
	regular  []*testbackend.Backend
	frozen   *testbackend.Backend
	resetter *testbackend.Backend
	tlsB     *testbackend.Backend
	backends []*testbackend.Backend // all, in info order
	info     []BackendInfo
	names    map[netip.AddrPort]string // backend address → name
	tlsCreds credentials.TransportCredentials
	socks    *sockTracker
	trace    *subconn.TraceChecker
	inRun    *inRun // the in-run checks' state, guarded by mu
	sub      *subconn.Subscription
	tw       *subconn.TraceWriter
	subDone  chan struct{}
	main     *client
	compare  *client
	phaseLen time.Duration

	stats, compareStats rpcCounters

	loadCtx    context.Context
	loadCancel context.CancelFunc
	loadWG     sync.WaitGroup

	mu sync.Mutex // guards everything below
	// cur is the phase running now, nil in the quiet times.
	cur    *phaseRun
	phases []*phaseRun
	// present is the set of backends in the resolved list now; base0
	// whether that list is the base list.
	present map[string]bool
	base0   bool
	// pending are removals not yet concluded; removals and cmpRemovals the
	// concluded ones.
	pending     []*removalState
	removals    Removals
	cmpRemovals Removals
	// lastGone is when each backend was last removed (removal drain window).
	lastGone map[string]time.Time
	// drainWindows are the GOAWAY drain windows.
	drainWindows []timeWindow
	// streak counts consecutive samples over the socket limit per backend.
	streak         map[string]int
	limitMax       int // most main sockets to one backend outside windows
	limitWhere     string
	limitFailures  []string
	cmpLimitMax    int
	cmpLimitWhere  string
	closing        []*closedCheck
	closedOK       int
	closedFailed   int
	closedFailures []string // the first maxListed
	samples        []Sample
	failures       []string
	failureCount   int
	problems       []string // the run's own errors (sampling, churn), the first maxListed
}

type timeWindow struct{ from, to time.Time }

// phaseRun is a Phase being run, with its counters.
type phaseRun struct {
	Phase
	started     time.Time
	updates     int
	errors      int
	resets      int
	thawed      int
	restarts    []string
	handshakes  int
	tlsChannels int
	churned     int
	goaways     int
	lost        map[subconn.Cause]int
	accepted0   map[string]int64
	accepted    map[string]int64 // during the phase, set at its end
	targets     []string         // the backends a GOAWAY storm or restarts hit
}

// removalState is a removal being watched: until the backend comes back or
// the run ends, its sockets must be 0 on every sample after the bound.
type removalState struct {
	Removal
	kind   string // kindMain or kindCompare
	at     time.Time
	addr   netip.AddrPort
	zeroAt time.Time // the first sample with no socket to the backend
}

// settle concludes p as released if its sockets reached 0, and as other
// otherwise.
func (p *removalState) settle(now time.Time, other string) {
	if !p.zeroAt.IsZero() {
		p.Outcome = RemovalReleased
		p.After = subconn.Duration(p.zeroAt.Sub(p.at))
		return
	}
	p.Outcome = other
	p.After = subconn.Duration(now.Sub(p.at))
}

type closedCheck struct {
	ch *chanRec
	at time.Time
}

// A client is one channel of the run.
type client struct {
	name   string
	target string
	ch     *chanRec
	res    *manual.Resolver
	cc     *grpc.ClientConn
	echo   echov1.EchoServiceClient
	stats  *rpcCounters
}

type rpcCounters struct{ ok, failed, retries, streams atomic.Int64 }

func (c *rpcCounters) snapshot() RPCStats {
	return RPCStats{OK: c.ok.Load(), Failed: c.failed.Load(), Retries: c.retries.Load(), Streams: c.streams.Load()}
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

func (r *runner) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	if len(r.problems) < maxListed {
		r.problems = append(r.problems, msg)
	}
	r.mu.Unlock()
	r.logf("%s", msg)
}

func (r *runner) run(ctx context.Context) (res *Result, runErr error) {
	// Everything below is undone by shutdown, whatever happens.
	r.subDone = make(chan struct{})
	filter := func(e *subconn.Event) bool { return strings.HasPrefix(e.Target, r.prefix) }
	r.sub = subconn.Subscribe(1<<16, filter)
	go r.drainTrace()
	if r.cfg.Trace != nil {
		r.tw = subconn.NewTraceWriter(r.cfg.Trace, 0, filter)
	}
	r.loadCtx, r.loadCancel = context.WithCancel(context.Background())
	samplerCtx, stopSampler := context.WithCancel(context.Background())
	samplerDone := make(chan struct{})
	close(samplerDone) // replaced once the sampler runs

	defer func() {
		res = r.shutdown(stopSampler, samplerDone)
		if runErr == nil && ctx.Err() != nil {
			runErr = fmt.Errorf("soak: interrupted after %v: %w", time.Since(r.start).Round(time.Millisecond), ctx.Err())
		}
	}()

	if err := r.startBackends(); err != nil {
		return nil, err
	}
	samplerDone = make(chan struct{})
	go r.sampler(samplerCtx, samplerDone)

	r.phaseLen, _ = plan(r.cfg.Duration, len(r.cfg.Faults))
	baseState := r.baseState()
	r.setPresent(baseState)
	var err error
	if r.main, err = r.dial("main", kindMain, r.cfg.Policy, baseState, insecure.NewCredentials(), &r.stats); err != nil {
		return nil, err
	}
	if r.cfg.Compare != "" {
		if r.compare, err = r.dial("compare", kindCompare, r.cfg.Compare, baseState, insecure.NewCredentials(), &r.compareStats); err != nil {
			return nil, err
		}
	}
	for _, c := range []*client{r.main, r.compare} {
		if c == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, readyTimeout)
		_, err := c.echo.Echo(rctx, &echov1.EchoRequest{Message: "ready"}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("soak: channel %s (%s) never served an RPC: %w", c.name, c.target, err)
		}
	}

	r.startLoad(r.main, r.cfg.Workers, r.cfg.Streams)
	if r.compare != nil {
		r.startLoad(r.compare, max(1, r.cfg.Workers/2), min(1, r.cfg.Streams))
	}
	r.timeline(ctx)
	return nil, nil
}

// startBackends starts the regular backends and the three special ones.
func (r *runner) startBackends() error {
	start := func(name, role string, opts ...testbackend.Option) (*testbackend.Backend, error) {
		b, err := testbackend.Start(append([]testbackend.Option{testbackend.Name(name)}, opts...)...)
		if err != nil {
			return nil, fmt.Errorf("soak: starting backend %s: %w", name, err)
		}
		r.backends = append(r.backends, b)
		r.info = append(r.info, BackendInfo{Name: name, Addr: b.Addr(), Role: role})
		r.names[netip.MustParseAddrPort(b.Addr())] = name
		return b, nil
	}
	for i := range r.cfg.Backends {
		b, err := start(fmt.Sprintf("b%d", i), roleRegular)
		if err != nil {
			return err
		}
		r.regular = append(r.regular, b)
	}
	var err error
	if r.frozen, err = start("frozen", roleFrozen, frozenOptions...); err != nil {
		return err
	}
	if r.resetter, err = start("resetting", roleResetting, testbackend.ResetAfter(200*time.Millisecond)); err != nil {
		return err
	}
	serverCA, err := testbackend.NewCA()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	otherCA, err := testbackend.NewCA()
	if err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	r.tlsCreds = otherCA.ClientCredentials()
	if r.tlsB, err = start("tls", roleTLS, testbackend.TLS(serverCA)); err != nil {
		return err
	}
	return nil
}

func (r *runner) name(b *testbackend.Backend) string {
	return r.names[netip.MustParseAddrPort(b.Addr())]
}

// dial makes a channel named name of the run with policy on a manual
// resolver, dialing through the socket tracker and subconn.Dialer, with the
// retry interceptor (and the logging interceptor for final failures).
func (r *runner) dial(name, kind, policy string, state resolver.State, creds credentials.TransportCredentials, stats *rpcCounters) (*client, error) {
	c := &client{name: name, target: r.prefix + name, ch: r.socks.register(name, kind), stats: stats}
	c.res = manual.NewBuilderWithScheme("soak")
	c.res.InitialState(state)
	opts := []grpc.DialOption{
		grpc.WithResolvers(c.res),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig(policy, r.cfg.DrainTimeout)),
		grpc.WithContextDialer(r.socks.dialer(c.ch)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	}
	if kind != kindTLS {
		opts = append(opts, r.interceptors(c)...)
	}
	cc, err := grpc.NewClient(c.target, opts...)
	if err != nil {
		return nil, fmt.Errorf("soak: channel %s: %w", name, err)
	}
	c.cc = cc
	c.echo = echov1.NewEchoServiceClient(cc)
	cc.Connect()
	return c, nil
}

// serviceConfig names policy; the leakproof policies get the drain timeout.
func serviceConfig(policy string, drain time.Duration) string {
	cfg := "{}"
	if isLeakproof(policy) {
		cfg = fmt.Sprintf(`{"drainTimeout":%q}`, drain.String())
	}
	return fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, policy, cfg)
}

// closeChannel closes c and starts checking that its sockets go.
func (r *runner) closeChannel(c *client) {
	if c == nil || c.cc == nil {
		return
	}
	c.cc.Close()
	r.mu.Lock()
	r.closing = append(r.closing, &closedCheck{ch: c.ch, at: time.Now()})
	r.mu.Unlock()
}

// drainTrace feeds the subscription to the trace checker and the phase
// counters until the subscription closes.
func (r *runner) drainTrace() {
	defer close(r.subDone)
	for e := range r.sub.C {
		r.trace.Add(e)
		if e.Target != r.mainTgt {
			continue
		}
		switch e.Kind {
		case subconn.KindGoAway, subconn.KindConnLost:
			r.mu.Lock()
			if p := r.cur; p != nil {
				if e.Kind == subconn.KindGoAway {
					p.goaways++
				} else {
					p.lost[e.Cause]++
				}
			}
			r.mu.Unlock()
		}
	}
}

// shutdown stops the load, closes every channel and backend, waits for the
// run's sockets and subchannels to go, and checks the baseline and the
// trace. It returns the result.
func (r *runner) shutdown(stopSampler context.CancelFunc, samplerDone chan struct{}) *Result {
	r.loadCancel()
	r.loadWG.Wait()
	r.closeChannel(r.main)
	r.closeChannel(r.compare)
	r.mu.Lock()
	for _, p := range r.pending {
		p.settle(time.Now(), RemovalOpen)
		r.conclude(p)
	}
	r.pending = nil
	r.mu.Unlock()

	// Let the sampler watch the channels' sockets and subchannels go.
	deadline := time.Now().Add(r.cfg.VerifyTimeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		waiting := len(r.closing)
		r.mu.Unlock()
		if waiting == 0 && r.liveManagers() == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopSampler()
	<-samplerDone
	r.sample(time.Now()) // concludes closed channels, with the sampler stopped
	r.mu.Lock()
	for _, c := range r.closing {
		r.closedFailed++
		r.listClosedFailure(fmt.Sprintf("channel %s: sockets still open %v after Close", c.ch.name, time.Since(c.at).Round(time.Millisecond)))
	}
	r.closing = nil
	r.mu.Unlock()

	for _, b := range r.backends {
		b.Close()
	}
	for i, b := range r.backends {
		st := b.Stats()
		r.info[i].Accepted, r.info[i].RPCs = st.Accepted, st.RPCs
	}
	r.sub.Close()
	<-r.subDone
	var twErr error
	if r.tw != nil {
		twErr = r.tw.Close()
	}
	var addrs []string
	for _, b := range r.info {
		addrs = append(addrs, b.Addr)
	}
	leaks := leaktest.Find(r.base, leaktest.Backends(addrs...), leaktest.Deadline(r.cfg.VerifyTimeout))
	r.sample(time.Now()) // the plots end at the baseline
	return r.result(leaks, twErr)
}

// liveManagers counts the run's managers still open or draining.
func (r *runner) liveManagers() int {
	n := 0
	for _, m := range subconn.Managers() {
		if strings.HasPrefix(m.Target(), r.prefix) {
			n++
		}
	}
	return n
}

// sampler samples every SampleInterval until ctx is done.
func (r *runner) sampler(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.sample(now)
		}
	}
}

// sample takes one reading and checks the invariants on it.
func (r *runner) sample(now time.Time) {
	sc, err := r.socks.count(r.names)
	if err != nil {
		r.problem("soak: reading sockets: %v", err)
		return
	}
	s := Sample{
		At:         since(r.start, now),
		Goroutines: runtime.NumGoroutine(),
		FDs:        countFDs(),
		Sockets:    cloneCounts(sc.byKind[kindMain]),
		RPCsOK:     r.stats.ok.Load(),
		RPCsFailed: r.stats.failed.Load(),
	}
	if r.cfg.Compare != "" {
		s.CompareSockets = cloneCounts(sc.byKind[kindCompare])
	}
	for name, n := range sc.total {
		s.OtherSockets += n - sc.byKind[kindMain][name] - sc.byKind[kindCompare][name]
	}
	liveChannels, err := r.readOwners(&s)
	if err != nil {
		r.problem("soak: reading descriptors: %v", err)
		return
	}
	for _, m := range subconn.Managers() {
		if !strings.HasPrefix(m.Target(), r.prefix) {
			continue
		}
		for _, info := range m.Snapshot() {
			s.Records++
			if !info.Shutdown {
				s.Subchannels++
				s.Refs += info.Refs
			}
		}
	}

	r.mu.Lock()
	if p := r.cur; p != nil {
		s.Phase = p.Fault
		maxInto(p.MaxSockets, s.Sockets)
		if r.cfg.Compare != "" {
			maxInto(p.CompareMaxSockets, s.CompareSockets)
		}
	}
	r.checkRemovals(now, sc)
	r.checkLimit(now, s)
	r.checkClosed(now, sc)
	r.observe(s, sc, liveChannels)
	r.keepLocked(s)
	r.mu.Unlock()
	if r.cfg.OnSample != nil {
		r.cfg.OnSample(s)
	}
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func maxInto(dst, src map[string]int) {
	for k, v := range src {
		if v > dst[k] {
			dst[k] = v
		}
	}
}

// checkRemovals watches the removed backends: once the bound has passed,
// any socket of the channel to a backend still removed is a leak, whether
// it was never closed or the channel dialed the backend again. Caller must
// hold r.mu.
func (r *runner) checkRemovals(now time.Time, sc *socketCount) {
	bound := r.cfg.bound()
	keep := r.pending[:0]
	for _, p := range r.pending {
		n := sc.byKind[p.kind][p.Backend]
		if n == 0 && p.zeroAt.IsZero() {
			p.zeroAt = now
		}
		if n == 0 || now.Sub(p.at) <= bound {
			keep = append(keep, p)
			continue
		}
		p.Outcome = RemovalLeaked
		p.After = subconn.Duration(now.Sub(p.at))
		p.Sockets = n
		p.Evidence = sc.describe(r.socks, p.kind, p.addr)
		if !p.zeroAt.IsZero() {
			p.Evidence = fmt.Sprintf("its sockets reached 0 %v after the removal, then the channel connected to it again: %s",
				p.zeroAt.Sub(p.at).Round(time.Millisecond), p.Evidence)
		}
		r.conclude(p)
	}
	clear(r.pending[len(keep):])
	r.pending = keep
}

// conclude files a concluded removal. Caller must hold r.mu.
func (r *runner) conclude(p *removalState) {
	if p.kind == kindCompare {
		r.cmpRemovals.add(p.Removal)
		return
	}
	r.removals.add(p.Removal)
	if p.Outcome == RemovalLeaked {
		r.logf("soak: LEAK: %s", removalText(p.Removal, r.cfg.bound()))
	}
}

func removalText(rm Removal, bound time.Duration) string {
	s := fmt.Sprintf("backend %s (%s): %d socket(s) still open %v after the resolver removed it at %.2fs", rm.Backend, rm.Addr, rm.Sockets, time.Duration(rm.After).Round(time.Millisecond), time.Duration(rm.RemovedAt).Seconds())
	if rm.Fault != "" {
		s += fmt.Sprintf(" (fault %s)", rm.Fault)
	}
	s += fmt.Sprintf(", channel still open; bound %v", bound)
	if rm.Evidence != "" {
		s += ": " + rm.Evidence
	}
	return s
}

// checkLimit checks the main channel's sockets per backend against the
// limit outside the drain windows; two samples in a row over it are a
// failure. Caller must hold r.mu.
func (r *runner) checkLimit(now time.Time, s Sample) {
	drain := false
	for _, w := range r.drainWindows {
		if !now.Before(w.from) && !now.After(w.to) {
			drain = true
		}
	}
	if p := r.cur; p != nil && p.Fault == FaultGoAway {
		drain = true
	}
	bound := r.cfg.bound()
	excused := func(name string) bool {
		t, ok := r.lastGone[name]
		return drain || (ok && now.Sub(t) <= bound)
	}
	where := func(name string) string {
		w := fmt.Sprintf("%s at %.1fs", name, time.Duration(s.At).Seconds())
		if s.Phase != "" {
			w += " (" + string(s.Phase) + ")"
		}
		return w
	}
	for name, n := range s.Sockets {
		if excused(name) {
			r.streak[name] = 0
			continue
		}
		if n > r.limitMax {
			r.limitMax, r.limitWhere = n, ""
			if n > 1 {
				r.limitWhere = where(name)
			}
		}
		if r.cfg.SocketLimit <= 0 || n <= r.cfg.SocketLimit {
			r.streak[name] = 0
			continue
		}
		r.streak[name]++
		if r.streak[name] == 2 && len(r.limitFailures) < 10 {
			r.limitFailures = append(r.limitFailures, fmt.Sprintf("%d sockets to %s", n, where(name)))
		}
	}
	for name, n := range s.CompareSockets {
		if !excused(name) && n > r.cmpLimitMax {
			r.cmpLimitMax, r.cmpLimitWhere = n, ""
			if n > 1 {
				r.cmpLimitWhere = where(name)
			}
		}
	}
}

// checkClosed concludes the checks of closed channels. Caller must hold r.mu.
func (r *runner) checkClosed(now time.Time, sc *socketCount) {
	bound := r.cfg.bound()
	keep := r.closing[:0]
	for _, c := range r.closing {
		n := 0
		var where []string
		for name, k := range sc.byChan[c.ch.id] {
			n += k
			where = append(where, fmt.Sprintf("%s:%d", name, k))
		}
		switch {
		case n == 0:
			r.closedOK++
			r.socks.forget(c.ch)
		case now.Sub(c.at) > bound:
			r.closedFailed++
			r.listClosedFailure(fmt.Sprintf("channel %s: %d socket(s) (%s) still open %v after Close", c.ch.name, n, strings.Join(where, " "), now.Sub(c.at).Round(time.Millisecond)))
		default:
			keep = append(keep, c)
		}
	}
	clear(r.closing[len(keep):])
	r.closing = keep
}

// listClosedFailure keeps the first failures of closed channels. Caller
// must hold r.mu.
func (r *runner) listClosedFailure(msg string) {
	if len(r.closedFailures) < maxListed {
		r.closedFailures = append(r.closedFailures, msg)
	}
}

// setPresent records the backends in st as the resolved list, and
// concludes removals of backends that came back. It returns the backends
// that st removes.
func (r *runner) setPresent(st resolver.State) (removed []string) {
	now := namesIn(st, r.names)
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.present {
		if !now[name] {
			removed = append(removed, name)
		}
	}
	keep := r.pending[:0]
	for _, p := range r.pending {
		if now[p.Backend] {
			p.settle(time.Now(), RemovalReadded)
			r.conclude(p)
			continue
		}
		keep = append(keep, p)
	}
	clear(r.pending[len(keep):])
	r.pending = keep
	r.present = now
	r.base0 = len(st.Endpoints) == 0 && slices.EqualFunc(st.Addresses, r.regular, func(a resolver.Address, b *testbackend.Backend) bool { return a.Addr == b.Addr() })
	return removed
}

func namesIn(st resolver.State, names map[netip.AddrPort]string) map[string]bool {
	out := map[string]bool{}
	add := func(a resolver.Address) {
		if ap, err := netip.ParseAddrPort(a.Addr); err == nil {
			if n, ok := names[ap]; ok {
				out[n] = true
			}
		}
	}
	for _, a := range st.Addresses {
		add(a)
	}
	for _, ep := range st.Endpoints {
		for _, a := range ep.Addresses {
			add(a)
		}
	}
	return out
}

// setList sends st to the main (and comparison) channel's resolver and
// starts a removal check for every backend it removes.
func (r *runner) setList(st resolver.State) {
	removed := r.setPresent(st)
	at := time.Now()
	r.mu.Lock()
	var fault Fault
	if r.cur != nil {
		fault = r.cur.Fault
		r.cur.updates++
	}
	for _, name := range removed {
		r.lastGone[name] = at
		for _, kind := range []string{kindMain, kindCompare} {
			if kind == kindCompare && r.cfg.Compare == "" {
				continue
			}
			addr := r.addrOf(name)
			r.pending = append(r.pending, &removalState{
				Removal: Removal{Backend: name, Addr: addr.String(), Fault: fault, RemovedAt: since(r.start, at)},
				kind:    kind, at: at, addr: addr,
			})
		}
	}
	r.mu.Unlock()
	r.main.res.UpdateState(st)
	if r.compare != nil {
		r.compare.res.UpdateState(st)
	}
}

func (r *runner) addrOf(name string) netip.AddrPort {
	for ap, n := range r.names {
		if n == name {
			return ap
		}
	}
	return netip.AddrPort{}
}

// atBase reports whether the resolved list is the base list.
func (r *runner) atBase() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base0
}

// reportError makes the resolvers report err.
func (r *runner) reportError(err error) {
	r.mu.Lock()
	if r.cur != nil {
		r.cur.errors++
	}
	r.mu.Unlock()
	r.main.res.CC().ReportError(err)
	if r.compare != nil {
		r.compare.res.CC().ReportError(err)
	}
}

// baseState is the list between faults: every regular backend.
func (r *runner) baseState() resolver.State {
	return addrState(r.regular...)
}

func addrState(bs ...*testbackend.Backend) resolver.State {
	var st resolver.State
	for _, b := range bs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: b.Addr()})
	}
	return st
}

func endpointState(eps ...[]*testbackend.Backend) resolver.State {
	var st resolver.State
	for _, ep := range eps {
		var e resolver.Endpoint
		for _, b := range ep {
			e.Addresses = append(e.Addresses, resolver.Address{Addr: b.Addr()})
		}
		st.Endpoints = append(st.Endpoints, e)
	}
	return st
}

// sleepCtx sleeps for d or until ctx is done, and reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
