package soak

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leakproof/leakproof/internal/dnsserver"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
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
	RunChild()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	base, err := leaktest.Take()
	if err != nil {
		return nil, fmt.Errorf("soak: the soak reads sockets from /proc: %w", err)
	}
	n := runs.Add(1)
	prefix := runPrefix(cfg.Resolver, n)
	var dns *dnsserver.Server
	if cfg.Resolver == ResolverDNS {
		// The run's DNS server is part of every target: dns://ADDR/NAME:PORT.
		if dns, err = dnsserver.Start(); err != nil {
			return nil, fmt.Errorf("soak: %w", err)
		}
		prefix = fmt.Sprintf("dns://%s/soak-r%d-", dns.Addr(), n)
	}
	r := &runner{
		cfg:          cfg,
		base:         base,
		start:        time.Now(),
		prefix:       prefix,
		dns:          dns,
		socks:        newSockTracker(),
		trace:        trace.NewChecker(),
		fleet:        fleet{names: map[netip.AddrPort]string{}},
		present:      map[string]bool{},
		removalWatch: removalWatch{lastGone: map[string]time.Time{}},
		limitWatch:   limitWatch{streak: map[string]int{}},
		inRun:        newInRun(),
		chans:        newUnderTest(cfg),
	}
	r.main = r.chans[0]
	r.mainTgt = r.prefix + "main"
	if dns != nil {
		r.mainTgt = r.prefix + "main." + dnsDomain + ":" // and the port
	}
	return r.run(ctx)
}

// runner is one soak run. Its state is split by concern: the backends
// (fleet), the channels and load, and, under mu, the timeline's phases and
// the three watches the sampler feeds (removals, the socket limit, closed
// channels).
type runner struct {
	// Initialized by Run and setup, read-only after.
	cfg      Config
	base     *leaktest.Snapshot
	start    time.Time
	prefix   string            // target prefix of every channel of the run
	mainTgt  string            // the main channel's target (under ResolverDNS, its start)
	dns      *dnsserver.Server // ResolverDNS: the run's DNS server
	phaseLen time.Duration
	fleet
	socks   *sockTracker
	trace   *trace.Checker
	sub     *trace.Subscription
	tw      *trace.Writer
	subDone chan struct{}
	// chans are the channels under test: main, then the comparison
	// channel if Config.Compare is set.
	chans []*underTest
	main  *underTest // chans[0]
	feed  feed       // set by run before the first channel

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
	removalWatch
	limitWatch
	subchannelWatch
	witnessTarget string // the channel under test's target, once it is dialed
	closedWatch
	inRun        *inRun // the in-run checks on the descriptor books
	samples      []Sample
	sampling     sampleThinning // which samples keepLocked keeps
	failures     []string
	failureCount int
	problems     []string // the run's own errors (sampling, churn), the first maxListed
}

// phaseRun is a Phase being run, with its counters.
type phaseRun struct {
	Phase
	started     time.Time
	updates     int
	errors      int
	resets      int
	thawed      int
	exec        *execStats
	starve      *starveReport
	restarts    []string
	handshakes  int
	tlsChannels int
	churned     int
	goaways     int
	lost        map[trace.Cause]int
	accepted0   map[string]int64
	accepted    map[string]int64 // during the phase, set at its end
	targets     []string         // the backends a GOAWAY storm or restarts hit
	xds         xdsPhase         // what the control plane did (Config.XDS)
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
	filter := func(e *trace.Event) bool { return strings.HasPrefix(e.Target, r.prefix) }
	r.sub = trace.Subscribe(1<<16, filter)
	go r.drainTrace()
	if r.cfg.Trace != nil {
		r.tw = trace.NewWriter(r.cfg.Trace, 0, filter)
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
	names := make([]string, len(r.info))
	for i, b := range r.info {
		names[i] = b.Name
	}
	r.preallocateSamples(names, r.cfg.Compare != "")
	samplerDone = make(chan struct{})
	go r.sampler(samplerCtx, samplerDone)

	r.phaseLen, _ = plan(r.cfg.Duration, len(r.cfg.Faults))
	baseState := r.baseState()
	r.setPresent(baseState)
	var err error
	if r.feed, err = r.newFeed(); err != nil {
		return nil, err
	}
	for _, ut := range r.chans {
		if ut.c, err = r.dial(ut.name, ut.name, ut.sc, baseState, nil, &ut.stats); err != nil {
			return nil, err
		}
		if ut == r.main {
			r.mu.Lock()
			r.witnessTarget = ut.c.target
			r.mu.Unlock()
		}
	}
	for _, ut := range r.chans {
		c := ut.c
		rctx, cancel := context.WithTimeout(ctx, readyTimeout)
		_, err := c.echo.Echo(rctx, &echov1.EchoRequest{Message: "ready"}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("soak: channel %s (%s) never served an RPC: %w", c.name, c.target, err)
		}
	}

	for _, ut := range r.chans {
		r.startLoad(ut.c, ut.workers, ut.streams)
	}
	r.timeline(ctx)
	return nil, nil
}

// shutdown stops the load, closes every channel and backend, waits for the
// run's sockets and subchannels to go, and checks the baseline and the
// trace. It returns the result.
func (r *runner) shutdown(stopSampler context.CancelFunc, samplerDone chan struct{}) *Result {
	r.loadCancel()
	r.loadWG.Wait()
	for _, ut := range r.chans {
		r.closeChannel(ut.c)
	}
	if r.feed != nil {
		r.feed.close()
	}
	if r.dns != nil {
		// What it recorded stays readable (the removals below, the report).
		if err := r.dns.Close(); err != nil {
			r.problem("soak: resolver dns: %v", err)
		}
	}
	r.mu.Lock()
	for _, p := range r.pending {
		other := RemovalOpen
		if _, learned := r.learnedAt(p); !learned {
			other = RemovalUnasked
		}
		p.settle(time.Now(), other)
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
