package subconn

import (
	"fmt"
	"slices"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
)

// markShutdownLocked decides that r is shut down. r stays in m.live until
// Shutdown has returned. Caller must hold m.mu and then call shutdownRecord
// without it, with r's real SubConn (from the last handle it released).
func (m *Manager) markShutdownLocked(r *record, holder, reason string) {
	r.shutdown = true
	c := r.coldLocked()
	c.shutdownAt = m.clock()
	m.stats.Shutdowns++
	m.emitLocked(r, trace.Event{Kind: trace.KindShutdown, Holder: holder, Reason: reason})
}

// shutdownRecord calls Shutdown on sc, r's real SubConn. It is called exactly
// once per record, by the goroutine that marked it shut down, without m.mu
// (grpc may close sockets synchronously, which reports back to the manager).
func (m *Manager) shutdownRecord(r *record, sc balancer.SubConn) {
	sc.Shutdown()
	m.mu.Lock()
	m.live.remove(r.keyAddress(), func(x *record) bool { return x == r })
	m.settled.Broadcast()
	destroyed := m.maybeDestroyLocked(r)
	if !destroyed && !r.destroyedLocked() { // (destroyed before Shutdown returned: nothing to drain)
		m.draining[r] = struct{}{}
		m.startDrainTimerLocked(r)
	}
	m.mu.Unlock()
	if destroyed {
		m.recordOpen(-1, 0)
	}
}

// startDrainTimerLocked bounds how long the sockets of r, shut down, may
// stay open: after the drain timeout drainExpired force-closes them. It
// starts the timer once. Caller must hold m.mu.
func (m *Manager) startDrainTimerLocked(r *record) {
	c := r.coldLocked()
	if c.drainTimer != nil || m.drainTimeout <= 0 {
		return
	}
	d := m.drainTimeout
	c.drainTimer = time.AfterFunc(d, func() { m.drainExpired(r, d) })
}

// drainExpired force-closes the sockets r still holds after the drain timeout.
func (m *Manager) drainExpired(r *record, d time.Duration) {
	m.mu.Lock()
	if r.destroyedLocked() {
		m.mu.Unlock()
		return
	}
	c := r.coldLocked()
	c.drainExpired = true
	socks := slices.Clone(c.sockets)
	m.stats.DrainTimeouts++
	if m.tracingLocked() {
		m.emitLocked(r, trace.Event{Kind: trace.KindDrainTimeout, Reason: fmt.Sprintf("%d socket(s) still open %v after Shutdown; force-closing", len(socks), d)})
	}
	m.mu.Unlock()
	m.recordLeaks(leakDrainTimeoutSocket, len(socks))
	for _, c := range socks {
		c.forceClose()
	}
}

// maybeDestroyLocked writes destroy once r is released, shut down and owns
// no socket, and reports whether it did: the caller then records the
// subchannel closed (recordOpen) after releasing m.mu. Caller must hold m.mu.
func (m *Manager) maybeDestroyLocked(r *record) bool {
	if !r.shutdown || r.refs > 0 {
		return false
	}
	c := r.coldLocked() // markShutdownLocked wrote it
	if c.destroyed || len(c.sockets) > 0 || c.dialing > 0 {
		return false
	}
	c.destroyed = true
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	delete(m.draining, r)
	m.undestroyed--
	m.stats.Destroyed++
	m.emitLocked(r, trace.Event{Kind: trace.KindDestroy})
	if m.closed && m.undestroyed == 0 {
		m.retireLocked()
	}
	return true
}
