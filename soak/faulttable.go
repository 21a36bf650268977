package soak

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
)

// Timing of the faults. The descriptions in faultTable are built from them.
const (
	goAwayAge      = 50 * time.Millisecond
	resetEvery     = 250 * time.Millisecond
	resetAfter     = 200 * time.Millisecond // the resetting backend's ResetAfter
	flapEvery      = 200 * time.Millisecond
	emptyFor       = 150 * time.Millisecond
	emptyEvery     = 500 * time.Millisecond
	errorEvery     = 300 * time.Millisecond
	tlsChannels    = 3
	tlsReplace     = 500 * time.Millisecond
	tlsRPCTimeout  = time.Second
	churnParallel  = 3
	churnPace      = 10 * time.Millisecond
	churnRPCTimout = 5 * time.Second
)

// faultSpec is everything the soak knows about one fault, in one place.
type faultSpec struct {
	fault       Fault
	description string // how the fault is made, in one line
	setsList    bool   // the fault sets the resolved list; the others run with the base list
	// inject makes the fault happen until pctx ends, then undoes what it
	// must; restores use ctx, the run's context.
	inject func(r *runner, ctx, pctx context.Context, p *phaseRun) error
	// evidence says what the phase did, besides resolver updates, GOAWAYs
	// and lost connections (nil: nothing more). Called with r.mu held.
	evidence func(p *phaseRun) string
	// provoked reports whether the phase shows that the fault happened,
	// and if not, why not. Called with r.mu held.
	provoked func(p *phaseRun) (bool, string)
}

// faultTable holds every fault, in the order the timeline runs them.
var faultTable = []faultSpec{
	{
		fault:       FaultGoAway,
		description: fmt.Sprintf("GOAWAY storm: MaxConnectionAge %v on two backends", goAwayAge),
		inject:      (*runner).injectGoAway,
		evidence: func(p *phaseRun) string {
			return fmt.Sprintf("%s accepted %d connections", strings.Join(p.targets, " and "), p.acceptedBy(p.targets))
		},
		provoked: func(p *phaseRun) (bool, string) {
			if n := p.acceptedBy(p.targets); n < 4 {
				return false, fmt.Sprintf("the GOAWAY storm made only %d new connection(s)", n)
			}
			return true, ""
		},
	},
	{
		fault:       FaultDuplicate,
		description: "duplicate addresses: [A, A, B]",
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, _ *phaseRun) error {
			rg := r.regular
			r.setList(addrState(rg[0], rg[0], rg[1]))
			<-pctx.Done()
			return nil
		},
		provoked: updated,
	},
	{
		fault:       FaultOverlap,
		description: "overlapping endpoints: [{A}, {A,B}, {B,C}]",
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, _ *phaseRun) error {
			rg := r.regular
			r.setList(endpointState([]*testbackend.Backend{rg[0]}, []*testbackend.Backend{rg[0], rg[1]}, []*testbackend.Backend{rg[1], rg[2]}))
			<-pctx.Done()
			return nil
		},
		provoked: updated,
	},
	{
		fault:       FaultReset,
		description: fmt.Sprintf("abrupt close: TCP RST on the backends in use, one every %v, and a backend that resets every connection after %v", resetEvery, resetAfter),
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, p *phaseRun) error {
			r.setList(addrState(append([]*testbackend.Backend{r.resetter}, r.regular...)...))
			for i := 0; sleepCtx(pctx, resetEvery); i++ {
				n := r.busiestNow(i).ResetConns()
				r.mu.Lock()
				p.resets += n
				r.mu.Unlock()
			}
			return nil
		},
		evidence: func(p *phaseRun) string {
			return fmt.Sprintf("%s reset; the resetting backend accepted %d", plural(p.resets, "connection"), p.accepted["resetting"])
		},
		provoked: func(p *phaseRun) (bool, string) {
			if p.resets == 0 && p.accepted["resetting"] == 0 {
				return false, "no connection was reset"
			}
			return true, ""
		},
	},
	{
		fault:       FaultFreeze,
		description: "connection-limit freeze: a backend that accepts and never answers, listed first",
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, p *phaseRun) error {
			r.frozen.Freeze()
			defer func() {
				// The freeze ends with the phase: the backend resets what
				// it held, as a server restarted out of its stall.
				n := r.frozen.Thaw()
				r.mu.Lock()
				p.thawed += n
				r.mu.Unlock()
			}()
			r.setList(addrState(append([]*testbackend.Backend{r.frozen}, r.regular...)...))
			// The reset halfway makes the channels reconnect (and find the
			// frozen backend if they have not). Under DNS it comes at a
			// quarter: a channel learns of the frozen backend only when a
			// lost connection makes grpc's dns resolver ask again, at most
			// once per DNSMinResolutionInterval, and that must fit in the
			// phase.
			resetAt := r.phaseLen / 2
			if r.cfg.Resolver == ResolverDNS {
				resetAt = r.phaseLen / 4
			}
			if sleepCtx(pctx, time.Until(p.started.Add(resetAt))) {
				n := 0
				for _, b := range r.regular {
					n += b.ResetConns()
				}
				r.mu.Lock()
				p.resets += n
				r.mu.Unlock()
			}
			<-pctx.Done()
			return nil
		},
		evidence: func(p *phaseRun) string {
			return fmt.Sprintf("the frozen backend accepted %s and answered none; %s reset mid-phase; %s still held when it thawed",
				plural(int(p.accepted["frozen"]), "connection"), plural(p.resets, "connection"), plural(p.thawed, "connection"))
		},
		provoked: func(p *phaseRun) (bool, string) {
			if p.accepted["frozen"] == 0 {
				return false, "nothing connected to the frozen backend"
			}
			return true, ""
		},
	},
	{
		fault:       FaultFlap,
		description: fmt.Sprintf("resolver flapping: two halves of the backends, alternating every %v", flapEvery),
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, _ *phaseRun) error {
			rg := r.regular
			half := len(rg) / 2
			lists := []resolver.State{addrState(rg[:half]...), addrState(rg[half:]...)}
			for i := 0; ; i++ {
				r.setList(lists[i%2])
				if !sleepCtx(pctx, flapEvery) {
					return nil
				}
			}
		},
		provoked: updated,
	},
	{
		fault:       FaultResolverError,
		description: "resolver errors between good updates",
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, _ *phaseRun) error {
			for i := 1; ; i++ {
				r.reportError(fmt.Errorf("soak: injected resolver error %d", i))
				if !sleepCtx(pctx, errorEvery/2) {
					return nil
				}
				r.setList(r.baseState())
				if !sleepCtx(pctx, errorEvery/2) {
					return nil
				}
			}
		},
		evidence: func(p *phaseRun) string { return plural(p.errors, "resolver error") },
		provoked: func(p *phaseRun) (bool, string) {
			if p.errors == 0 {
				return false, "no resolver error reported"
			}
			return true, ""
		},
	},
	{
		fault:       FaultEmpty,
		description: fmt.Sprintf("empty address lists, %v out of every %v", emptyFor, emptyEvery),
		setsList:    true,
		inject: func(r *runner, _, pctx context.Context, _ *phaseRun) error {
			for {
				r.setList(resolver.State{})
				if !sleepCtx(pctx, emptyFor) {
					return nil
				}
				r.setList(r.baseState())
				if !sleepCtx(pctx, emptyEvery-emptyFor) {
					return nil
				}
			}
		},
		provoked: updated,
	},
	{
		fault:       FaultRestart,
		description: "backend stop (hard) and restart on the same port",
		inject:      (*runner).restarts,
		evidence:    func(p *phaseRun) string { return fmt.Sprintf("restarted %s", strings.Join(p.restarts, ", ")) },
		provoked: func(p *phaseRun) (bool, string) {
			if len(p.restarts) == 0 {
				return false, "no backend restarted"
			}
			return true, ""
		},
	},
	{
		fault:       FaultTLS,
		description: "TLS handshake failures under concurrency: channels that do not trust the backend's CA",
		inject: func(r *runner, _, pctx context.Context, p *phaseRun) error {
			return r.tlsFailures(pctx, p)
		},
		evidence: func(p *phaseRun) string {
			return fmt.Sprintf("%d connections to the TLS backend from %d channels; %d handshakes rejected the server's certificate (unknown authority), no RPC succeeded", p.accepted["tls"], p.tlsChannels, p.handshakes)
		},
		provoked: func(p *phaseRun) (bool, string) {
			if p.handshakes == 0 || p.accepted["tls"] == 0 {
				return false, "no TLS handshake failed"
			}
			return true, ""
		},
	},
	{
		fault:       FaultChurn,
		description: "channel churn: create, use once and close channels from several goroutines",
		inject: func(r *runner, _, pctx context.Context, p *phaseRun) error {
			r.churn(pctx, p)
			return nil
		},
		evidence: func(p *phaseRun) string { return fmt.Sprintf("%d channels created, used and closed", p.churned) },
		provoked: func(p *phaseRun) (bool, string) {
			if p.churned == 0 {
				return false, "no channel churned"
			}
			return true, ""
		},
	},
	{
		fault:       FaultExec,
		description: fmt.Sprintf("sockets inherited by child processes: a child every %v while channels dial and close; no child holds our socket, nothing stays ESTABLISHED", execEvery),
		inject: func(r *runner, _, pctx context.Context, p *phaseRun) error {
			return r.execChildren(pctx, p)
		},
		evidence: func(p *phaseRun) string {
			if p.exec == nil {
				return ""
			}
			return fmt.Sprintf("%d child processes started while %d channels dialed and closed; %d sockets found in children, %d connections left ESTABLISHED elsewhere",
				p.exec.children, p.exec.channels, len(p.exec.inherited), len(p.exec.stray))
		},
		provoked: func(p *phaseRun) (bool, string) {
			if p.exec == nil || p.exec.children == 0 || p.exec.channels == 0 {
				return false, "no child process started beside a channel"
			}
			return true, ""
		},
	},
	{
		fault:       FaultStarve,
		description: fmt.Sprintf("resolver starvation: a child soak under RLIMIT_NOFILE of %d above its use, whose resolver fails for stretches, then recovers", starveHeadroom),
		inject: func(r *runner, _, pctx context.Context, p *phaseRun) error {
			return r.starvation(pctx, p)
		},
		evidence: func(p *phaseRun) string {
			s := p.starve
			if s == nil {
				return ""
			}
			return fmt.Sprintf("child under RLIMIT_NOFILE %d: %d cycle(s), %d lookups (at most %.1f/s per resolver), at most %.0f%% of a core while starving; %d of %d RPCs failed with the resolver's error, %d channels recovered (slowest %s); descriptors after each cycle %v",
				s.Limit, s.Cycles, s.Lookups, s.MaxLookupsPerS, s.MaxCPU*100, s.ClearErrors, s.StarvedRPCs, s.Recovered, s.SlowestRecover, s.FDs)
		},
		provoked: func(p *phaseRun) (bool, string) {
			if p.starve == nil || p.starve.StarvedRPCs == 0 {
				return false, "no RPC ran while the resolver starved"
			}
			return true, ""
		},
	},
}

// updated is the proof of the faults that only change the resolved list.
func updated(p *phaseRun) (bool, string) {
	if p.updates == 0 {
		return false, "no resolver update"
	}
	return true, ""
}

// specOf returns f's entry in faultTable or xdsFaultTable; f must be
// valid.
func specOf(f Fault) *faultSpec {
	for _, table := range [][]faultSpec{faultTable, xdsFaultTable} {
		for i := range table {
			if table[i].fault == f {
				return &table[i]
			}
		}
	}
	panic(fmt.Sprintf("soak: fault %q is not in faultTable", f)) // Config validation rejects unknown faults
}

// injectGoAway makes the two busiest backends send GOAWAY every goAwayAge
// for the phase, then marks a drain window.
func (r *runner) injectGoAway(_, pctx context.Context, p *phaseRun) error {
	kp := keepalive.ServerParameters{MaxConnectionAge: goAwayAge, MaxConnectionAgeGrace: goAwayGrace}
	targets := r.busiest(2)
	r.mu.Lock()
	p.targets = r.namesOf(targets)
	r.mu.Unlock()
	var errs []error
	for _, b := range targets {
		if err := b.SetKeepalive(kp); err != nil {
			errs = append(errs, err)
		}
	}
	<-pctx.Done()
	for _, b := range targets {
		if err := b.SetKeepalive(keepalive.ServerParameters{}); err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	r.drainWindows = append(r.drainWindows, timeWindow{p.started, time.Now().Add(goAwayGrace + r.cfg.RemovalSlack)})
	r.mu.Unlock()
	return joinErrs(errs)
}
