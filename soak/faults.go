package soak

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// plan returns the phase length and the number of times the timeline of n
// faults runs in d: phases are at most maxPhase, so a long run repeats the
// faults.
func plan(d time.Duration, n int) (phase time.Duration, cycles int) {
	avail := d - 2*quiet
	cycles = max(1, int((avail+time.Duration(n)*maxPhase-1)/(time.Duration(n)*maxPhase)))
	return avail / time.Duration(cycles*n), cycles
}

// setsList reports whether the fault sets the resolved list itself; the
// others run with the base list.
func (f Fault) setsList() bool { return specOf(f).setsList }

// timeline runs the quiet start, the phases and the quiet end.
func (r *runner) timeline(ctx context.Context) {
	t0 := time.Now()
	_, cycles := plan(r.cfg.Duration, len(r.cfg.Faults))
	r.logf("soak: %s on %d backends, %v: %d fault(s) × %d, %v each", r.cfg.Policy, r.cfg.Backends, r.cfg.Duration, len(r.cfg.Faults), cycles, r.phaseLen.Round(time.Millisecond))
	at := t0.Add(quiet)
	if !sleepCtx(ctx, time.Until(at)) {
		return
	}
	for range cycles {
		for _, f := range r.cfg.Faults {
			end := at.Add(r.phaseLen)
			r.runPhase(ctx, f, end)
			at = end
			if ctx.Err() != nil {
				return
			}
		}
	}
	if !r.atBase() {
		r.setList(r.baseState())
	}
	sleepCtx(ctx, time.Until(t0.Add(r.cfg.Duration)))
}

// runPhase runs fault f until end and records it.
func (r *runner) runPhase(ctx context.Context, f Fault, end time.Time) {
	now := time.Now()
	p := &phaseRun{
		Phase:     Phase{Fault: f, Start: since(r.start, now), MaxSockets: map[string]int{}},
		started:   now,
		lost:      map[trace.Cause]int{},
		accepted0: map[string]int64{},
	}
	if r.cfg.Compare != "" {
		p.CompareMaxSockets = map[string]int{}
	}
	for i, b := range r.backends {
		p.accepted0[r.info[i].Name] = b.Stats().Accepted
	}
	r.mu.Lock()
	r.cur = p
	r.phases = append(r.phases, p)
	r.mu.Unlock()
	r.logf("soak: %5.1fs %s: %s", time.Duration(p.Start).Seconds(), f, f.Description())

	skip := r.skipReason(f)
	if (skip != "" || !f.setsList()) && !r.atBase() {
		r.setList(r.baseState())
	}
	var err error
	if skip != "" {
		r.logf("soak: %s skipped: %s", f, skip)
	} else {
		if ph, ok := r.feed.(interface{ phase(Fault) }); ok {
			ph.phase(f)
			defer ph.phase("")
		}
		pctx, cancel := context.WithDeadline(ctx, end)
		err = r.inject(ctx, pctx, f, p)
		cancel()
	}
	sleepCtx(ctx, time.Until(end))

	r.mu.Lock()
	p.End = since(r.start, time.Now())
	if err != nil {
		p.Error = err.Error()
	}
	p.Evidence = r.evidence(p)
	if skip != "" {
		p.Skipped = skip
		p.Evidence = "skipped: " + skip
	}
	r.cur = nil
	r.mu.Unlock()
	if err != nil {
		r.logf("soak: fault %s: %v", f, err)
	}
}

// skipReason returns why fault f cannot run on the run's feed, "" if it
// can.
func (r *runner) skipReason(f Fault) string {
	if s, ok := r.feed.(interface{ skip(Fault) string }); ok {
		return s.skip(f)
	}
	return ""
}

// inject makes fault f happen until pctx ends, then undoes what it must.
// ctx is the run's context: restores use it, not pctx.
func (r *runner) inject(ctx, pctx context.Context, f Fault, p *phaseRun) error {
	return specOf(f).inject(r, ctx, pctx, p)
}

// busiest returns n regular backends, those the main channel holds the
// most sockets to (in the last sample) first, so that a fault on them hits
// a pick_first channel wherever it is connected.
func (r *runner) busiest(n int) []*testbackend.Backend {
	r.mu.Lock()
	var last map[string]int
	if len(r.samples) > 0 {
		last = r.samples[len(r.samples)-1].Sockets
	}
	r.mu.Unlock()
	bs := slices.Clone(r.regular)
	slices.SortStableFunc(bs, func(a, b *testbackend.Backend) int { return last[r.name(b)] - last[r.name(a)] })
	return bs[:n]
}

// busiestNow returns one of the regular backends the main channel holds
// the most sockets to, the i-th of them (modulo) when several tie.
func (r *runner) busiestNow(i int) *testbackend.Backend {
	bs := r.busiest(len(r.regular))
	r.mu.Lock()
	var last map[string]int
	if len(r.samples) > 0 {
		last = r.samples[len(r.samples)-1].Sockets
	}
	r.mu.Unlock()
	ties := 1
	for ties < len(bs) && last[r.name(bs[ties])] == last[r.name(bs[0])] {
		ties++
	}
	return bs[i%ties]
}

// namesOf returns the names of bs.
func (r *runner) namesOf(bs []*testbackend.Backend) []string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = r.name(b)
	}
	return names
}

// restarts stops the backend the main channel uses most, then another, and
// restarts each on its port.
func (r *runner) restarts(ctx, pctx context.Context, p *phaseRun) error {
	victims := r.busiest(2)
	r.mu.Lock()
	p.targets = r.namesOf(victims)
	r.mu.Unlock()
	var errs []error
	slot := r.phaseLen / time.Duration(len(victims))
	for i, b := range victims {
		if i > 0 && !sleepCtx(pctx, time.Until(p.started.Add(time.Duration(i)*slot))) {
			break
		}
		b.Stop()
		sleepCtx(ctx, slot*3/5) // restore even when the phase is cut short
		if err := b.Restart(); err != nil {
			errs = append(errs, err)
			continue
		}
		r.mu.Lock()
		p.restarts = append(p.restarts, r.name(b))
		r.mu.Unlock()
	}
	return joinErrs(errs)
}

// tlsFailures keeps tlsChannels channels that do not trust the TLS
// backend's CA busy with RPCs, two goroutines each, replacing them every
// tlsReplace.
func (r *runner) tlsFailures(pctx context.Context, p *phaseRun) error {
	st := addrState(r.tlsB)
	var mu sync.Mutex
	var unexpected []string
	// The proof is typed: the credentials see each handshake fail on the
	// untrusted certificate; the RPCs' errors are the policy's to word.
	creds := rejectWatch{TransportCredentials: r.untrusted, rejected: func() {
		r.mu.Lock()
		p.handshakes++
		r.mu.Unlock()
	}}
	for round := 0; pctx.Err() == nil; round++ {
		var chans []*client
		for i := range tlsChannels {
			c, err := r.dial(fmt.Sprintf("tls-%d-%d", round, i), kindTLS, r.cfg.channelServiceConfig(), st, creds, &rpcCounters{})
			if err != nil {
				for _, c := range chans {
					r.closeChannel(c)
				}
				return err
			}
			chans = append(chans, c)
		}
		rctx, cancel := context.WithTimeout(pctx, tlsReplace)
		var wg sync.WaitGroup
		for _, c := range chans {
			for range 2 {
				wg.Go(func() {
					for rctx.Err() == nil {
						cctx, ccancel := context.WithTimeout(rctx, tlsRPCTimeout)
						_, err := c.echo.Echo(cctx, &echov1.EchoRequest{Message: "tls"})
						ccancel()
						mu.Lock()
						if err == nil && len(unexpected) < 3 {
							unexpected = append(unexpected, "an RPC succeeded over a TLS handshake that must fail")
						}
						mu.Unlock()
						sleepCtx(rctx, 5*time.Millisecond)
					}
				})
			}
		}
		wg.Wait()
		cancel()
		for _, c := range chans {
			r.closeChannel(c)
		}
		mu.Lock()
		p.tlsChannels += len(chans)
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(unexpected) > 0 {
		return fmt.Errorf("tls: %s", strings.Join(slices.Compact(unexpected), "; "))
	}
	return nil
}

// rejectWatch is transport credentials that report each client handshake
// that failed because the server's certificate is not signed by a trusted
// authority.
type rejectWatch struct {
	credentials.TransportCredentials
	rejected func()
}

func (w rejectWatch) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := w.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		w.rejected()
	}
	return c, info, err
}

func (w rejectWatch) Clone() credentials.TransportCredentials {
	return rejectWatch{TransportCredentials: w.TransportCredentials.Clone(), rejected: w.rejected}
}

// churn creates, uses once and closes channels from churnParallel
// goroutines until pctx ends.
func (r *runner) churn(pctx context.Context, p *phaseRun) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var n int
	r.mu.Lock()
	phase := len(r.phases)
	r.mu.Unlock()
	for range churnParallel {
		wg.Go(func() {
			for pctx.Err() == nil {
				mu.Lock()
				n++
				name := fmt.Sprintf("churn-%d-%d", phase, n)
				mu.Unlock()
				c, err := r.dial(name, kindChurn, r.cfg.channelServiceConfig(), r.baseState(), nil, &r.main.stats)
				if err != nil {
					r.problem("soak: churn: %v", err)
					return
				}
				ctx, cancel := context.WithTimeout(r.loadCtx, churnRPCTimout)
				_, err = c.echo.Echo(ctx, &echov1.EchoRequest{Message: "churn"}, grpc.WaitForReady(true))
				cancel()
				if r.loadCtx.Err() == nil {
					c.count(err, false)
				}
				r.closeChannel(c)
				sleepCtx(pctx, churnPace)
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	p.churned += n
	r.mu.Unlock()
}

// evidence says what the phase did. Caller must hold r.mu.
func (r *runner) evidence(p *phaseRun) string {
	var parts []string
	accepted := map[string]int64{}
	for i, b := range r.backends {
		name := r.info[i].Name
		accepted[name] = b.Stats().Accepted - p.accepted0[name]
	}
	p.accepted = accepted
	p.accepted0 = nil // needed only while the phase ran; the record is kept for the result
	if what := specOf(p.Fault).evidence; what != nil {
		parts = append(parts, what(p))
	}
	if p.updates > 0 {
		parts = append(parts, plural(p.updates, "resolver update"))
	}
	if s := p.xds.String(); s != "" {
		parts = append(parts, s)
	}
	if p.goaways > 0 {
		parts = append(parts, plural(p.goaways, "GOAWAY")+" seen by the main channel")
	}
	if len(p.lost) > 0 {
		var lost []string
		for _, cause := range slices.Sorted(maps.Keys(p.lost)) {
			lost = append(lost, fmt.Sprintf("%s %d", cause, p.lost[cause]))
		}
		parts = append(parts, "connections lost: "+strings.Join(lost, ", "))
	}
	return strings.Join(parts, "; ")
}

// provoked reports whether the phase shows that its fault happened, and
// if not, why not. Caller must hold r.mu.
func (r *runner) provoked(p *phaseRun) (bool, string) {
	return specOf(p.Fault).provoked(p)
}

// acceptedBy sums the connections the named backends accepted in the
// phase.
func (p *phaseRun) acceptedBy(names []string) int64 {
	var n int64
	for _, name := range names {
		n += p.accepted[name]
	}
	return n
}

// plural renders "1 word" or "n words".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}
