package subconn

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/resolver"
)

// Orphans: subchannels a child policy forgot.
//
// A policy that drops a SubConn without Shutdown keeps its socket open for
// the life of the channel. A ClientConn whose parent tells it the resolver
// state it hands to the child (ObserveResolverState) can catch that: a
// SubConn created for an address that was in that state, whose address has
// then been absent from the latest state for longer than the orphan timeout
// while the child still holds it, is an orphan. The manager records an
// orphan event, counts it in the leakproof.subchannel.leaks metric (leak kind
// "orphan") and, with ReclaimOrphans, releases the child's reference itself.
//
// Only addresses the child got from the resolver state are judged: a child
// that learns addresses elsewhere (a grpclb-style balancer, an xDS child fed
// by its own control-plane stream) may legitimately hold them whatever the
// resolver says.

// leakOrphan is the leakproof.leak_kind label of an orphan.
const leakOrphan = "orphan"

// DefaultOrphanTimeout is how long a subchannel's address may be absent from
// the resolver state while a child still holds it before it is an orphan:
// room for policies that keep a subchannel a little while on purpose
// (graceful policy switches, sticky failover).
const DefaultOrphanTimeout = 30 * time.Second

// An OrphanMode says what happens to an orphan once it is recorded.
type OrphanMode int

const (
	// ReclaimOrphans releases the child's reference: the subchannel is shut
	// down unless someone else holds it, the child's later Shutdown of that
	// SubConn is a logged no-op, and the child gets no state update for it
	// again.
	ReclaimOrphans OrphanMode = iota
	// ReportOrphans records and counts the orphan and leaves it to the child.
	ReportOrphans
)

// String returns "reclaim" or "report", as service configs spell them.
func (o OrphanMode) String() string {
	switch o {
	case ReclaimOrphans:
		return "reclaim"
	case ReportOrphans:
		return "report"
	}
	return fmt.Sprintf("OrphanMode(%d)", int(o))
}

// WatchOrphans starts judging the SubConns created through c from now on
// (or changes the timeout and mode of a watch already running): a SubConn
// whose address was in the latest state given to ObserveResolverState when it
// was created, and which the child still holds after that address has been
// absent from the latest state for timeout, is an orphan. Call StopWatching
// when the child is closed.
func (c *ClientConn) WatchOrphans(timeout time.Duration, mode OrphanMode) {
	if w := c.orphans.Load(); w != nil {
		w.configure(timeout, mode)
		return
	}
	w := &orphanWatch{m: c.m, timeout: timeout, mode: mode}
	if !c.orphans.CompareAndSwap(nil, w) {
		c.orphans.Load().configure(timeout, mode)
	}
}

// ObserveResolverState tells the watch the resolver state the parent is
// about to hand to the child. Without a watch it does nothing.
func (c *ClientConn) ObserveResolverState(s resolver.State) {
	if w := c.orphans.Load(); w != nil {
		w.observe(s)
	}
}

// StopWatching stops the orphan watch; SubConns still held are left to the
// child and to the manager's Close.
func (c *ClientConn) StopWatching() {
	if w := c.orphans.Load(); w != nil {
		w.stop()
	}
}

// orphanWatch judges one ClientConn's SubConns. It never calls the manager
// while holding its own mutex.
type orphanWatch struct {
	m *Manager // read-only

	mu      sync.Mutex
	timeout time.Duration
	mode    OrphanMode
	present map[string]struct{}  // addresses of the latest resolver state; nil before the first
	held    []heldConn           // judged handles: created for an address of the state then
	gone    map[string]time.Time // addresses of held handles absent from the latest state, since
	timer   *time.Timer
	stopped bool
}

// heldConn is a judged handle and the address its holder asked for. The
// address, not the subchannel's key, is what the resolver state must keep
// listing: two spellings of one backend (127.0.0.1:P, [::ffff:127.0.0.1]:P)
// share a subchannel, and a child that forgets the SubConn of one spelling
// while the other is still listed has forgotten it all the same.
type heldConn struct {
	h    *SubConn
	addr string
}

func (w *orphanWatch) configure(timeout time.Duration, mode OrphanMode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timeout == timeout && w.mode == mode {
		return
	}
	w.timeout, w.mode = timeout, mode
	w.scheduleLocked(time.Now())
}

// track judges h, created for addr, if addr is in the latest resolver
// state.
func (w *orphanWatch) track(h *SubConn, addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.present == nil {
		return
	}
	if _, ok := w.present[addr]; ok {
		w.held = append(w.held, heldConn{h, addr})
	}
}

func (w *orphanWatch) observe(s resolver.State) {
	present := make(map[string]struct{}, len(s.Addresses)+len(s.Endpoints))
	for _, a := range s.Addresses {
		present[a.Addr] = struct{}{}
	}
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			present[a.Addr] = struct{}{}
		}
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.present = present
	w.held = slices.DeleteFunc(w.held, func(hc heldConn) bool { return hc.h.released.Load() })
	gone := make(map[string]time.Time)
	for _, hc := range w.held {
		addr := hc.addr
		if _, ok := present[addr]; ok {
			continue
		}
		since, ok := w.gone[addr]
		if !ok {
			since = now
		}
		gone[addr] = since
	}
	w.gone = gone
	w.scheduleLocked(now)
}

// scheduleLocked sets the timer for the earliest address to become due.
// Caller must hold w.mu.
func (w *orphanWatch) scheduleLocked(now time.Time) {
	if len(w.gone) == 0 {
		if w.timer != nil {
			w.timer.Stop()
		}
		return
	}
	var first time.Time
	for _, since := range w.gone {
		if first.IsZero() || since.Before(first) {
			first = since
		}
	}
	d := max(first.Add(w.timeout).Sub(now), 0)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
	} else {
		w.timer.Reset(d)
	}
}

type orphan struct {
	h      *SubConn
	addr   string // as its holder asked for it
	absent time.Duration
}

// fire judges the held handles whose address has been gone long enough.
func (w *orphanWatch) fire() {
	now := time.Now()
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	var due []orphan
	w.held = slices.DeleteFunc(w.held, func(hc heldConn) bool {
		if hc.h.released.Load() {
			return true
		}
		since, ok := w.gone[hc.addr]
		if !ok || now.Sub(since) < w.timeout {
			return false
		}
		due = append(due, orphan{hc.h, hc.addr, now.Sub(since)})
		return true // judged once
	})
	still := make(map[string]bool, len(w.held))
	for _, hc := range w.held {
		still[hc.addr] = true
	}
	for addr := range w.gone {
		if !still[addr] {
			delete(w.gone, addr)
		}
	}
	timeout, mode := w.timeout, w.mode
	w.scheduleLocked(now)
	w.mu.Unlock()
	for _, o := range due {
		w.m.orphan(o.h, o.addr, o.absent, timeout, mode)
	}
}

func (w *orphanWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.held, w.gone, w.present = nil, nil, nil
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}

// orphan records h, created for addr, as an orphan and, with
// ReclaimOrphans, releases it.
func (m *Manager) orphan(h *SubConn, addr string, absent, timeout time.Duration, mode OrphanMode) {
	r := h.rec
	m.mu.Lock()
	if h.released.Load() || m.closed {
		m.mu.Unlock()
		return // released in the meantime: not an orphan after all
	}
	m.stats.Orphans++
	reason := fmt.Sprintf("address %s absent from the resolver state for %v (orphanTimeout %v); %s", addr, absent.Round(time.Millisecond), timeout, mode)
	m.emitLocked(r, trace.Event{Kind: trace.KindOrphan, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Holder: h.holder, Reason: reason})
	shut := false
	if mode == ReclaimOrphans {
		h.orphaned.Store(true)
		shut = m.unrefLocked(h, trace.KindUnref, "orphan reclaimed")
	}
	m.mu.Unlock()
	logger.Warningf("subconn: %v is an orphan: %s", h, reason)
	m.recordLeaks(leakOrphan, 1)
	if shut {
		m.shutdownRecord(r, h.SubConn)
	}
	m.cq.kickAsync()
}
