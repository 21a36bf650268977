package subconn

import (
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// onState is the one StateListener of r's real SubConn. grpc calls it from
// its serializer, so it runs holder listeners synchronously: when it
// returns, every holder has the update, as it would have had from grpc.
func (r *record) onState(s balancer.SubConnState) {
	m := r.m
	m.mu.Lock()
	if r.shutdown || !r.made {
		m.mu.Unlock() // updates after Shutdown are dropped, never delivered
		return
	}
	old := r.stateLocked()
	r.state = uint8(s.ConnectivityState)
	if s.ConnectionError != nil || r.cold != nil {
		r.coldLocked().lastErr = s.ConnectionError
	}
	r.connectPending = false
	r.healthEpoch++
	r.healthListened = false
	if r.cold != nil {
		r.cold.healthLast = nil
	}
	if s.ConnectivityState == connectivity.Connecting {
		r.coldLocked().connectingSince = m.clock()
	}
	tracing := m.tracingLocked()
	reason := ""
	if tracing {
		reason = "from " + old.String()
		if s.ConnectivityState == connectivity.TransientFailure {
			reason += ": " + r.failureCauseLocked(s.ConnectionError)
		}
	}
	m.emitLocked(r, trace.Event{Kind: trace.KindState, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Reason: reason})
	var lost trace.Cause
	if old == connectivity.Ready && s.ConnectivityState == connectivity.Idle {
		l := r.lossCauseLocked()
		c := r.coldLocked()
		c.lost++
		c.lastLoss = l.reason()
		lost = l.cause
		countLoss(&m.stats, l.cause)
		m.emitLossLocked(r, l)
	}
	for h := r.holders; h != nil; h = h.next {
		if !h.waiting {
			m.queueStateLocked(h, s)
		}
	}
	var reconnect balancer.SubConn
	if s.ConnectivityState == connectivity.Idle && !m.closed {
		for h := r.holders; h != nil && reconnect == nil; h = h.next {
			if h.autoReconnect {
				reconnect = h.SubConn
			}
		}
	}
	if reconnect != nil {
		r.connectPending = true
		m.emitLocked(r, trace.Event{Kind: trace.KindConnect, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Reason: "auto-reconnect"})
	}
	m.mu.Unlock()
	if lost != "" {
		m.recordLoss(lost)
	}
	if reconnect != nil {
		reconnect.Connect()
	}
	m.cq.deliver(true)
}

// SubConn handle operations: Connect and health listeners.

func (m *Manager) connect(h *SubConn) {
	r := h.rec
	m.mu.Lock()
	if h.released.Load() || r.shutdown {
		m.mu.Unlock()
		if logger.V(2) {
			logger.Infof("subconn: Connect on released SubConn %s by %q ignored", r.key(), h.holder)
		}
		return
	}
	if h.waiting {
		// The holder's first Connect: from now on it gets every update,
		// starting with the state the subchannel is in.
		h.waiting = false
		if r.stateLocked() != connectivity.Idle {
			m.catchUpLocked(h)
			m.mu.Unlock()
			m.cq.kickAsync()
			return
		}
	}
	if r.stateLocked() != connectivity.Idle || r.connectPending {
		m.mu.Unlock() // already connecting, ready or in backoff: the holder learns the state from its listener
		return
	}
	r.connectPending = true
	m.emitLocked(r, trace.Event{Kind: trace.KindConnect, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Holder: h.holder})
	sc := h.SubConn
	m.mu.Unlock()
	sc.Connect()
}

func (m *Manager) registerHealthListener(h *SubConn, l func(balancer.SubConnState)) {
	r := h.rec
	m.mu.Lock()
	if h.released.Load() || r.shutdown {
		m.mu.Unlock()
		return
	}
	epoch := r.healthEpoch
	h.health, h.healthEpoch = l, epoch
	if l == nil || r.stateLocked() != connectivity.Ready {
		m.mu.Unlock()
		return
	}
	register := !r.healthListened
	if register {
		r.healthListened = true
	} else if last := r.coldOrZeroLocked().healthLast; last != nil {
		m.cq.add(h.deliverHealth(*last, epoch))
	}
	sc := h.SubConn
	m.mu.Unlock()
	if register {
		sc.RegisterHealthListener(func(st balancer.SubConnState) { r.onHealth(epoch, st) })
	}
	m.cq.kickAsync()
}

// onHealth is the one health listener of r's real SubConn for one READY
// period; grpc calls it from its serializer.
func (r *record) onHealth(epoch int32, st balancer.SubConnState) {
	m := r.m
	m.mu.Lock()
	if r.shutdown || r.healthEpoch != epoch {
		m.mu.Unlock()
		return
	}
	r.coldLocked().healthLast = &st
	for h := r.holders; h != nil; h = h.next {
		if h.health != nil && h.healthEpoch == epoch {
			m.cq.add(h.deliverHealth(st, epoch))
		}
	}
	m.mu.Unlock()
	m.cq.deliver(false) // grpc holds the SubConn's health mutex: never wait here
}
