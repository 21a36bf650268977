package soak

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc/resolver"
)

// removalWatch follows the backends the resolver removed. Guarded by r.mu.
type removalWatch struct {
	// pending are removals not yet concluded (each channel under test
	// files its concluded ones in underTest.removals).
	pending []*removalState
	// lastGone is when each backend was last removed (removal drain window).
	lastGone map[string]time.Time
}

// removalState is a removal being watched: until the backend comes back or
// the run ends, its sockets must be 0 on every sample after the bound.
type removalState struct {
	Removal
	ut     *underTest // the channel whose sockets are watched
	at     time.Time
	addr   netip.AddrPort
	zeroAt time.Time // the first sample with no socket to the backend
	// answered is, under ResolverDNS, the first DNS answer without the
	// backend (zero until there is one).
	answered time.Time
}

// settle concludes p as released if its sockets reached 0, and as other
// otherwise.
func (p *removalState) settle(now time.Time, other string) {
	if !p.zeroAt.IsZero() {
		p.Outcome = RemovalReleased
		p.After = jsontime.Duration(p.zeroAt.Sub(p.at))
		return
	}
	p.Outcome = other
	p.After = jsontime.Duration(now.Sub(p.at))
}

// checkRemovals watches the removed backends: once the bound has passed,
// any socket of the channel to a backend still removed is a leak, whether
// it was never closed or the channel dialed the backend again. Caller must
// hold r.mu.
func (r *runner) checkRemovals(now time.Time, sc *socketCount) {
	bound := r.cfg.bound()
	keep := r.pending[:0]
	for _, p := range r.pending {
		n := sc.byKind[p.ut.name][p.Backend]
		if n == 0 && p.zeroAt.IsZero() {
			p.zeroAt = now
		}
		from, learned := r.learnedAt(p)
		if n == 0 || !learned || now.Sub(from) <= bound {
			keep = append(keep, p)
			continue
		}
		p.Outcome = RemovalLeaked
		p.After = jsontime.Duration(now.Sub(p.at))
		p.Sockets = n
		p.Evidence = sc.describe(r.socks, p.ut.name, p.addr)
		if !p.zeroAt.IsZero() {
			p.Evidence = fmt.Sprintf("its sockets reached 0 %v after the removal, then the channel connected to it again: %s",
				p.zeroAt.Sub(p.at).Round(time.Millisecond), p.Evidence)
		}
		r.conclude(p)
	}
	clear(r.pending[len(keep):])
	r.pending = keep
}

// learnedAt returns when the channel learned of removal p: at the removal
// itself, or under ResolverDNS at the first DNS answer without the backend
// (false before there is one). Caller must hold r.mu.
func (r *runner) learnedAt(p *removalState) (time.Time, bool) {
	if !p.answered.IsZero() {
		return p.answered, true
	}
	l, ok := r.feed.(interface {
		learned(kind string, addr netip.AddrPort, since time.Time) (time.Time, bool)
	})
	if !ok {
		return p.at, true
	}
	t, ok := l.learned(p.ut.name, p.addr, p.at)
	if ok {
		p.answered = t
		p.AnsweredAt = since(r.start, t)
	}
	return t, ok
}

// conclude files a concluded removal. Caller must hold r.mu.
func (r *runner) conclude(p *removalState) {
	p.ut.removals.add(p.Removal)
	if !p.ut.info && p.Outcome == RemovalLeaked {
		r.logf("soak: LEAK (%s): %s", CheckRemovals, removalText(p.Removal, r.cfg.bound()))
	}
}

func removalText(rm Removal, bound time.Duration) string {
	s := fmt.Sprintf("backend %s (%s): %d socket(s) still open %v after the resolver removed it at %.2fs", rm.Backend, rm.Addr, rm.Sockets, time.Duration(rm.After).Round(time.Millisecond), time.Duration(rm.RemovedAt).Seconds())
	if rm.AnsweredAt > 0 {
		s += fmt.Sprintf(" (the channel's first DNS answer without it at %.2fs)", time.Duration(rm.AnsweredAt).Seconds())
	}
	if rm.Fault != "" {
		s += fmt.Sprintf(" (fault %s)", rm.Fault)
	}
	s += fmt.Sprintf(", channel still open; bound %v", bound)
	if rm.Evidence != "" {
		s += ": " + rm.Evidence
	}
	return s
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
			other := RemovalReadded
			if _, learned := r.learnedAt(p); !learned {
				other = RemovalUnasked
			}
			p.settle(time.Now(), other)
			r.conclude(p)
			continue
		}
		keep = append(keep, p)
	}
	clear(r.pending[len(keep):])
	r.pending = keep
	r.present = now
	r.subchannelWatch.list(time.Now(), endpointsPer(st, r.names), r.cfg.bound())
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

// setList sends st to the main (and comparison) channel through the run's
// feed and starts a removal check for every backend it removes.
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
		for _, ut := range r.chans {
			addr := r.addrOf(name)
			r.pending = append(r.pending, &removalState{
				Removal: Removal{Backend: name, Addr: addr.String(), Fault: fault, RemovedAt: since(r.start, at)},
				ut:      ut, at: at, addr: addr,
			})
		}
	}
	r.mu.Unlock()
	r.feed.update(st)
}

// atBase reports whether the resolved list is the base list.
func (r *runner) atBase() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base0
}

// reportError makes the feed report err.
func (r *runner) reportError(err error) {
	r.mu.Lock()
	if r.cur != nil {
		r.cur.errors++
	}
	r.mu.Unlock()
	r.feed.reportError(err)
}
