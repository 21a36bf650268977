package soak

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

// Check names, in the order of the verdict.
const (
	CheckRPCFailures   = "RPC failures"
	CheckRemovals      = "removed backends released"
	CheckSocketLimit   = "sockets per backend"
	CheckSubchannels   = "subchannels explained"
	CheckClosed        = "closed channels released"
	CheckBackendConns  = "backend connections explained"
	CheckClientBudget  = "client descriptors and goroutines explained"
	CheckGrowth        = "no growth"
	CheckTrace         = "refcount trace"
	CheckGoroutines    = "goroutines at baseline"
	CheckFDs           = "descriptors at baseline"
	CheckSockets       = "sockets at baseline"
	CheckFaults        = "faults injected"
	checkComparePrefix = "compare "
)

// result builds the Result and its verdict. leaks is what the final
// leaktest check found (nil: everything back at the baseline); twErr is the
// trace writer's.
func (r *runner) result(leaks *leaktest.Leaks, twErr error) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{
		Policy:                r.cfg.Policy,
		Compare:               r.cfg.Compare,
		XDS:                   r.cfg.xds(),
		XDSWeightedLocalities: r.cfg.XDSWeightedLocalities,
		Resolver:              r.cfg.Resolver,
		ServiceConfig:         r.cfg.ServiceConfig,
		TLS:                   r.cfg.TLS,
		Target:                r.mainTarget(),
		Duration:              jsontime.Duration(r.cfg.Duration),
		Elapsed:               since(r.start, time.Now()),
		Started:               r.start,
		Backends:              slices.Clone(r.info),
		Faults:                slices.Clone(r.cfg.Faults),
		SocketLimit:           r.cfg.SocketLimit,
		MaxFailureRate:        max(r.cfg.MaxFailureRate, 0),
		RemovalBound:          jsontime.Duration(r.cfg.bound()),
		RPCs:                  r.main.stats.snapshot(),
		Failures:              slices.Clone(r.failures),
		Removals:              r.main.removals.clone(),
		Trace:                 r.trace.Report(),
		Samples:               slices.Clone(r.samples),
	}
	for _, ut := range r.chans[1:] {
		s := ut.stats.snapshot()
		res.CompareRPCs = &s
		cmp := ut.removals.clone()
		res.CompareRemovals = &cmp
	}
	for _, p := range r.phases {
		res.Phases = append(res.Phases, p.Phase)
	}
	if d, ok := r.feed.(interface {
		report(time.Duration) *DNSReport
	}); ok {
		res.DNS = d.report(time.Since(r.start))
	}
	warm := warmUp(r.cfg.Duration)
	res.WarmUp = jsontime.Duration(warm)
	res.Slopes = append(runSlopes(r.samples, warm, r.cfg.Duration, res.backendOrder()), r.inRun.phaseSlopes()...)
	res.Peak = r.inRun.peak
	if n := len(r.samples); n > 0 {
		last := r.samples[n-1]
		res.Final = Totals{Goroutines: last.Goroutines, FDs: last.FDs, Sockets: last.ClientFDs, HeapInUse: last.HeapInUse, Records: last.Records}
	}
	res.Subchannels = SubchannelTotals{Created: res.Trace.Subchannels, Destroyed: res.Trace.Destroyed}

	add := func(c Check) { res.Checks = append(res.Checks, c) }
	for _, c := range r.checks(r.main, res.RPCs, res.Removals) {
		add(c)
	}
	add(r.subchannelCheck())
	add(r.closedCheck())
	add(r.inRun.backendCheck())
	add(r.inRun.clientCheck())
	add(growthCheck(res.Slopes, warm))
	add(r.traceCheck(res.Trace, twErr))
	for _, c := range baselineChecks(leaks) {
		add(c)
	}
	add(r.faultCheck())
	for _, ut := range r.chans[1:] {
		for _, c := range r.checks(ut, *res.CompareRPCs, *res.CompareRemovals) {
			add(c)
		}
	}
	res.Pass = true
	for _, c := range res.Checks {
		if !c.Info && !c.Pass {
			res.Pass = false
		}
	}
	return res
}

func at(where string) string {
	if where == "" {
		return ""
	}
	return " (" + where + ")"
}

func rpcCheck(name string, s RPCStats, limit float64) Check {
	total := s.OK + s.Failed
	rate := s.FailureRate()
	c := Check{Name: name}
	switch {
	case total == 0:
		c.Detail = "no RPC completed"
	case limit < 0:
		c.Pass = s.Failed == 0
		c.Detail = fmt.Sprintf("%d of %d RPCs failed after retries (none allowed); %d retries", s.Failed, total, s.Retries)
	default:
		c.Pass = rate <= limit
		c.Detail = fmt.Sprintf("%.3f%%: %d of %d RPCs failed after retries (limit %g%%); %d retries", rate*100, s.Failed, total, limit*100, s.Retries)
	}
	return c
}

func removalCheck(name string, rs Removals, bound time.Duration) Check {
	var leaked []string
	for _, rm := range rs.List {
		if rm.Outcome == RemovalLeaked {
			leaked = append(leaked, removalText(rm, bound))
		}
	}
	c := Check{Name: name, Pass: rs.Leaked == 0}
	parts := []string{fmt.Sprintf("%d removal(s)", rs.Released+rs.Readded+rs.Leaked+rs.Open+rs.Unasked)}
	if rs.Released > 0 {
		parts = append(parts, fmt.Sprintf("%d released (the slowest after %v)", rs.Released, time.Duration(rs.SlowestRelease).Round(time.Millisecond)))
	}
	if rs.Readded > 0 {
		parts = append(parts, fmt.Sprintf("%d re-added before release", rs.Readded))
	}
	if rs.Open > 0 {
		parts = append(parts, fmt.Sprintf("%d still within the bound when the run ended", rs.Open))
	}
	if rs.Unasked > 0 {
		var names []string
		for _, rm := range rs.List {
			if rm.Outcome == RemovalUnasked && time.Duration(rm.After) > bound {
				names = append(names, fmt.Sprintf("%s (%s) removed from DNS at %.2fs, still open %v later", rm.Backend, rm.Addr, time.Duration(rm.RemovedAt).Seconds(), time.Duration(rm.After).Round(time.Millisecond)))
			}
		}
		s := fmt.Sprintf("%d never learned (the channel did not ask DNS while the backend was removed: not a leak of the policy; cure: the policy's reresolveInterval, or the servers' MaxConnectionAge)", rs.Unasked)
		if len(names) > 0 {
			s += fmt.Sprintf(", of which removed while healthy and not released for longer than the bound: %s", strings.Join(names, ", "))
		}
		parts = append(parts, s)
	}
	summary := strings.Join(parts, ", ") + fmt.Sprintf("; bound %v", bound)
	if rs.Leaked > 0 {
		c.Detail = fmt.Sprintf("%d leaked: %s; %s", rs.Leaked, strings.Join(leaked, "; "), summary)
	} else {
		c.Detail = summary
	}
	return c
}

// Caller must hold r.mu.
func (r *runner) closedCheck() Check {
	c := Check{Name: CheckClosed, Pass: r.closedFailed == 0}
	if c.Pass {
		c.Detail = fmt.Sprintf("%d channel(s) closed; each released its sockets within %v", r.closedOK, r.cfg.bound())
	} else {
		c.Detail = fmt.Sprintf("%d of %d closed channel(s) kept sockets open: %s", r.closedFailed, r.closedOK+r.closedFailed, strings.Join(r.closedFailures, "; "))
	}
	return c
}

// Caller must hold r.mu.
func (r *runner) traceCheck(rep trace.Report, twErr error) Check {
	c := Check{Name: CheckTrace, Pass: true}
	var bad []string
	for i, p := range rep.Problems {
		if i == 5 {
			bad = append(bad, fmt.Sprintf("and %d more", len(rep.Problems)-5))
			break
		}
		bad = append(bad, p.String())
	}
	if rep.Live > 0 {
		bad = append(bad, fmt.Sprintf("%d subchannel(s) still live after every channel closed", rep.Live))
	}
	if r.sub.Dropped() {
		bad = append(bad, "the trace subscription fell behind: the trace is incomplete")
	}
	if twErr != nil {
		bad = append(bad, fmt.Sprintf("trace writer: %v", twErr))
	}
	switch {
	case len(bad) > 0:
		c.Pass = false
		c.Detail = strings.Join(bad, "; ")
	case rep.Events == 0:
		c.Detail = fmt.Sprintf("no refcount trace: %s does not use subconn", r.cfg.Policy)
	default:
		c.Detail = fmt.Sprintf("clean: %d events, %d subchannels, %d destroyed", rep.Events, rep.Subchannels, rep.Destroyed)
	}
	return c
}

// baselineChecks judges the final leaktest check from its typed result:
// goroutines, descriptors and sockets each fail on their own kind of leak,
// and descriptors and sockets also when they could not be read. The details
// display the evidence; no decision reads message text.
func baselineChecks(l *leaktest.Leaks) []Check {
	const clean = "back at the baseline taken before the soak"
	gor := Check{Name: CheckGoroutines, Pass: true, Detail: clean}
	fds := Check{Name: CheckFDs, Pass: true, Detail: clean}
	socks := Check{Name: CheckSockets, Pass: true, Detail: clean}
	if l == nil {
		return []Check{gor, fds, socks}
	}
	var unread []string
	for _, err := range l.Errors {
		unread = append(unread, "not checked: "+err.Error())
	}
	if l.Goroutines != nil {
		gor.Pass = false
		gor.Detail = fmt.Sprintf("goroutines not running at the baseline, after %v: %v", l.Deadline, l.Goroutines)
		if len(l.Groups) > 0 {
			lines := []string{fmt.Sprintf("goroutines not running at the baseline, after %v, grouped by stack:", l.Deadline)}
			for _, g := range l.Groups {
				lines = append(lines, "\t"+g.Headline())
			}
			gor.Detail = strings.Join(lines, "\n")
		}
	}
	if len(l.FDs) > 0 || len(unread) > 0 {
		lines := slices.Clone(unread)
		if len(l.FDs) > 0 {
			lines = append(lines, fmt.Sprintf("%d descriptor(s) not open at the baseline, after %v:", len(l.FDs), l.Deadline))
		}
		for _, f := range l.FDs {
			lines = append(lines, "\t"+f.String())
		}
		fds.Pass, fds.Detail = false, strings.Join(lines, "\n")
	}
	if len(l.Backends) > 0 || len(unread) > 0 {
		lines := slices.Clone(unread)
		for _, b := range l.Backends {
			lines = append(lines, fmt.Sprintf("%d socket(s) to backend %v after %v, %d at the baseline:", b.Now, b.Backend, l.Deadline, b.Baseline))
			for _, f := range b.FDs {
				lines = append(lines, "\t"+f.String())
			}
			for _, h := range b.Elsewhere {
				lines = append(lines, "\t"+h.String())
			}
		}
		socks.Pass, socks.Detail = false, strings.Join(lines, "\n")
	}
	return []Check{gor, fds, socks}
}

// Caller must hold r.mu.
func (r *runner) faultCheck() Check {
	c := Check{Name: CheckFaults}
	ran := map[Fault]bool{}
	var bad []string
	for _, p := range r.phases {
		if p.End == 0 {
			continue // cut short before it ended
		}
		ran[p.Fault] = true
		if p.Skipped != "" {
			continue
		}
		if p.Error != "" {
			bad = append(bad, fmt.Sprintf("%s at %.1fs: %s", p.Fault, time.Duration(p.Start).Seconds(), p.Error))
		} else if ok, why := r.provoked(p); !ok {
			bad = append(bad, fmt.Sprintf("%s at %.1fs: %s", p.Fault, time.Duration(p.Start).Seconds(), why))
		}
	}
	for _, f := range r.cfg.Faults {
		if !ran[f] {
			bad = append(bad, fmt.Sprintf("%s never ran", f))
		}
	}
	bad = append(bad, r.problems...)
	c.Pass = len(bad) == 0
	var skipped []string
	for _, p := range r.phases {
		if p.Skipped != "" {
			skipped = append(skipped, fmt.Sprintf("%s skipped: %s", p.Fault, p.Skipped))
		}
	}
	if c.Pass {
		c.Detail = fmt.Sprintf("%d phase(s); every one of the %d fault(s) ran and showed its effect", len(r.phases), len(r.cfg.Faults))
		if len(skipped) > 0 {
			c.Detail = fmt.Sprintf("%d phase(s); every fault ran and showed its effect, but %s", len(r.phases), strings.Join(slices.Compact(skipped), "; "))
		}
	} else {
		c.Detail = strings.Join(slices.Compact(bad), "; ")
	}
	return c
}
