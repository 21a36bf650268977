package subconn

import (
	"fmt"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// Acquire returns a handle on the subchannel for addr's backend key (its
// Addr, ServerName and Attributes, not its BalancerAttributes), creating it
// if no live one exists. holder names who takes the reference, in the trace
// and in snapshots. Each handle is one reference: Release it exactly once.
func (m *Manager) Acquire(addr resolver.Address, holder string, opts ...AcquireOption) (*SubConn, error) {
	var o acquireOpts
	for _, opt := range opts {
		opt.applyAcquire(&o)
	}
	return m.acquire(addr, holder, o)
}

func (m *Manager) acquire(addr resolver.Address, holder string, o acquireOpts) (*SubConn, error) {
	// An empty Addr is a backend like any other: grpc accepts it, and a
	// custom dialer connects it ("passthrough:///" with bufconn).
	ka := keyAddr(addr)
	m.mu.Lock()
	for {
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("subconn: acquire %s for %q: %w", keyString(ka), holder, ErrClosed)
		}
		r, ok := m.live.get(ka)
		if !ok {
			break
		}
		if !r.made || r.shutdown {
			// Another goroutine is creating it or shutting it down: wait, so
			// that a key never has two SubConns that are not shut down.
			m.settled.Wait()
			continue
		}
		h := m.refLocked(r, r.holders.SubConn, holder, o) // made and not shut down: held
		m.mu.Unlock()
		m.cq.kickAsync()
		return h, nil
	}
	r := newRecord(m, ka)
	m.live.set(ka, r)
	stampFirst := m.stampAtCreateLocked()
	m.mu.Unlock()

	unstamped := addr
	unstamped.Attributes = ka.Attributes
	nso := o.nsOpts
	nso.StateListener = r.onState
	sc, err := m.newSubConn(unstamped, nso, r, stampFirst)

	m.mu.Lock()
	m.settled.Broadcast()
	if err != nil {
		m.live.remove(ka, func(x *record) bool { return x == r })
		m.mu.Unlock()
		return nil, fmt.Errorf("subconn: acquire %s for %q: %w", r.key(), holder, err)
	}
	r.made = true
	m.undestroyed++
	m.stats.Created++
	m.emitLocked(r, trace.Event{Kind: trace.KindCreate, Holder: holder})
	if m.closed { // Close ran while NewSubConn did: nobody may hold it.
		m.markShutdownLocked(r, holder, "manager closed while the subchannel was being created")
		m.mu.Unlock()
		m.recordOpen(1, 0)
		m.shutdownRecord(r, sc)
		return nil, fmt.Errorf("subconn: acquire %s for %q: %w", r.key(), holder, ErrClosed)
	}
	h := m.refLocked(r, sc, holder, o)
	m.mu.Unlock()
	m.recordOpen(1, 0)
	m.cq.kickAsync()
	return h, nil
}

// newSubConn creates grpc's SubConn for r and gives its sockets to r
// (Dialer). A manager whose ClientConn is the channel's own (m.direct) has
// no parent: the token goes into the address given to NewSubConn. Everywhere
// else but under xDS, the parent sees the address exactly as
// it gave it (a parent may look it up, as weighted_round_robin does in a
// resolver.AddressMap), and ownSockets adds the token below the parent.
// Under an xDS cluster (stampFirst) the token goes into the address given to
// NewSubConn, the one way through cluster_impl and outlier detection; a
// parent that refuses the stamped address because it looks addresses up
// with their attributes (weighted_round_robin over leakproof_pick_first)
// fails before it creates anything, and gets the address as it gave it.
func (m *Manager) newSubConn(addr resolver.Address, opts balancer.NewSubConnOptions, r *record, stampFirst bool) (balancer.SubConn, error) {
	if m.direct {
		// No parent between the manager and the channel: the token goes in
		// at creation. ownSockets' UpdateAddresses would make grpc copy the
		// address, recompute its telemetry labels and keep a channelz trace
		// entry for it: ~290 B per subchannel, measured.
		return m.cc.NewSubConn([]resolver.Address{stamp(addr, r)}, opts)
	}
	if stampFirst {
		if sc, err := m.cc.NewSubConn([]resolver.Address{stamp(addr, r)}, opts); err == nil {
			return sc, nil
		}
	}
	sc, err := m.cc.NewSubConn([]resolver.Address{addr}, opts)
	if err == nil {
		ownSockets(sc, addr, r)
	}
	return sc, err
}

// refLocked adds a handle on r, whose real SubConn is sc, for holder.
// Caller must hold m.mu.
func (m *Manager) refLocked(r *record, sc balancer.SubConn, holder string, o acquireOpts) *SubConn {
	h := &SubConn{SubConn: sc, rec: r, holder: holder, listener: o.listener, autoReconnect: o.autoReconnect, queued: uint8(connectivity.Idle)}
	if o.bind != nil {
		o.bind(h)
	}
	r.addHolderLocked(h)
	r.refs++
	m.stats.Refs++
	m.emitLocked(r, trace.Event{Kind: trace.KindRef, RefsBefore: int(r.refs) - 1, RefsAfter: int(r.refs), Holder: holder})
	if o.untilConnect {
		// grpc never calls a StateListener before Connect: the holder is
		// told the current state at its first Connect (connect).
		h.waiting = true
		return h
	}
	m.catchUpLocked(h)
	return h
}

// catchUpLocked tells h the state of its subchannel if it is not IDLE: a new
// holder believes a new SubConn is IDLE. Caller must hold m.mu.
func (m *Manager) catchUpLocked(h *SubConn) {
	r := h.rec
	if st := r.stateLocked(); st != connectivity.Idle {
		m.queueStateLocked(h, balancer.SubConnState{ConnectivityState: st, ConnectionError: r.coldOrZeroLocked().lastErr})
	}
}

// queueStateLocked queues a state update for h unless h already has it.
// Caller must hold m.mu.
func (m *Manager) queueStateLocked(h *SubConn, st balancer.SubConnState) {
	if h.listener == nil || connectivity.State(h.queued) == st.ConnectivityState {
		return
	}
	h.queued = uint8(st.ConnectivityState)
	m.cq.add(func() {
		if !h.released.Load() {
			h.listener(st)
		}
	})
}

// release drops h's reference. Exactly one caller sees refs reach zero and
// calls Shutdown.
func (m *Manager) release(h *SubConn, reason string) error {
	r := h.rec
	m.mu.Lock()
	if h.released.Load() {
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return fmt.Errorf("subconn: release %s by %q after the manager closed: %w", r.key(), h.holder, ErrReleased)
		}
		return fmt.Errorf("subconn: release %s by %q: %w", r.key(), h.holder, ErrReleased)
	}
	shut := m.unrefLocked(h, trace.KindUnref, reason)
	m.mu.Unlock()
	if shut {
		m.shutdownRecord(r, h.SubConn)
	}
	m.cq.kickAsync()
	return nil
}

// unrefLocked drops h's reference and reports whether the caller must now
// call shutdownRecord (with h.SubConn). Caller must hold m.mu.
func (m *Manager) unrefLocked(h *SubConn, kind trace.Kind, reason string) bool {
	r := h.rec
	h.released.Store(true)
	r.removeHolderLocked(h)
	r.refs--
	m.stats.Unrefs++
	if kind == trace.KindLeak {
		m.stats.Leaks++
	}
	m.emitLocked(r, trace.Event{Kind: kind, RefsBefore: int(r.refs) + 1, RefsAfter: int(r.refs), Holder: h.holder, Reason: reason})
	if l := h.listener; l != nil && !m.closed && !h.orphaned.Load() {
		m.cq.add(func() { l(balancer.SubConnState{ConnectivityState: connectivity.Shutdown}) })
	}
	if r.refs > 0 {
		return false
	}
	m.markShutdownLocked(r, h.holder, reason)
	return true
}
