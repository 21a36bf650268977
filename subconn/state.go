package subconn

import (
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// onState is the one StateListener of r's real SubConn. grpc calls it from
// its serializer, so it runs holder listeners synchronously: when it
// returns, every holder has the update, as it would have had from grpc.
func (r *record) onState(s balancer.SubConnState) {
	m := r.m
	m.mu.Lock()
	if r.shutdown || r.sc == nil {
		m.mu.Unlock() // updates after Shutdown are dropped, never delivered
		return
	}
	old := r.state
	r.state = s.ConnectivityState
	r.lastErr = s.ConnectionError
	r.connectPending = false
	r.health = healthState{epoch: r.health.epoch + 1}
	if r.state == connectivity.Connecting {
		r.connectingSince = time.Now()
	}
	tracing := m.tracingLocked()
	reason := ""
	if tracing {
		reason = "from " + old.String()
		if r.state == connectivity.TransientFailure {
			reason += ": " + r.failureCauseLocked(s.ConnectionError)
		}
	}
	m.emitLocked(r, Event{Kind: KindState, RefsBefore: r.refs, RefsAfter: r.refs, Reason: reason})
	var lost Cause
	if old == connectivity.Ready && r.state == connectivity.Idle {
		l := r.lossCauseLocked()
		r.lost++
		r.lastLoss = l.reason()
		lost = l.cause
		m.stats.countLoss(l.cause)
		m.emitLossLocked(r, l)
	}
	for _, h := range r.holders {
		m.queueStateLocked(h, s)
	}
	var reconnect balancer.SubConn
	if r.state == connectivity.Idle && r.autoReconnect > 0 && !m.closed {
		reconnect = r.sc
		r.connectPending = true
		m.emitLocked(r, Event{Kind: KindConnect, RefsBefore: r.refs, RefsAfter: r.refs, Reason: "auto-reconnect"})
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
			logger.Infof("subconn: Connect on released SubConn %s by %q ignored", r.key, h.holder)
		}
		return
	}
	if r.state != connectivity.Idle || r.connectPending {
		m.mu.Unlock() // already connecting, ready or in backoff: the holder learns the state from its listener
		return
	}
	r.connectPending = true
	m.emitLocked(r, Event{Kind: KindConnect, RefsBefore: r.refs, RefsAfter: r.refs, Holder: h.holder})
	sc := r.sc
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
	epoch := r.health.epoch
	h.health, h.healthEpoch = l, epoch
	if l == nil || r.state != connectivity.Ready {
		m.mu.Unlock()
		return
	}
	register := !r.health.registered
	if register {
		r.health.registered = true
	} else if r.health.last != nil {
		m.cq.add(h.deliverHealth(*r.health.last, epoch))
	}
	sc := r.sc
	m.mu.Unlock()
	if register {
		sc.RegisterHealthListener(func(st balancer.SubConnState) { r.onHealth(epoch, st) })
	}
	m.cq.kickAsync()
}

// onHealth is the one health listener of r's real SubConn for one READY
// period; grpc calls it from its serializer.
func (r *record) onHealth(epoch int, st balancer.SubConnState) {
	m := r.m
	m.mu.Lock()
	if r.shutdown || r.health.epoch != epoch {
		m.mu.Unlock()
		return
	}
	r.health.last = &st
	for _, h := range r.holders {
		if h.health != nil && h.healthEpoch == epoch {
			m.cq.add(h.deliverHealth(st, epoch))
		}
	}
	m.mu.Unlock()
	m.cq.deliver(false) // grpc holds the SubConn's health mutex: never wait here
}
