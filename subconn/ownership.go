package subconn

import (
	"fmt"
	"net"
	"slices"
)

// Dialer bookkeeping, called by trackedConn and Dialer.

// dialStart counts a dial about to start, unless r is shut down: a dial in
// flight holds destroy back, so none may start after Shutdown.
func (r *record) dialStart() bool {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if r.shutdown {
		return false
	}
	r.dialing++
	r.dialSeen = true
	return true
}

// dialDone accounts for a finished dial. It returns the connection to hand
// to grpc (wrapped), or an error.
func (r *record) dialDone(conn net.Conn, err error) (net.Conn, error) {
	m := r.m
	if err != nil {
		m.mu.Lock()
		r.dialing--
		r.lastDialErr = err
		destroyed := m.maybeDestroyLocked(r)
		m.mu.Unlock()
		if destroyed {
			m.recordOpen(-1, 0)
		}
		return nil, err
	}
	c := newTrackedConn(conn, r)
	m.mu.Lock()
	r.dialing--
	r.sockets = append(r.sockets, c)
	r.lastSocket = c
	m.stats.SocketsOpened++
	reason := ""
	if r.shutdown {
		reason = "opened after Shutdown (dial was in flight)"
		m.startDrainTimerLocked(r)
	}
	m.emitLocked(r, Event{Kind: KindSocketOpen, RefsBefore: r.refs, RefsAfter: r.refs, Reason: reason, Socket: c.ref()})
	closeNow := r.shutdown && r.drainExpired
	m.mu.Unlock()
	m.recordOpen(0, 1)
	if closeNow {
		c.forceClose()
		return nil, fmt.Errorf("subconn: subchannel #%d %s shut down while dialing", r.id, r.key)
	}
	return c, nil
}

// socketClosed accounts for a closed socket.
func (r *record) socketClosed(c *trackedConn, reason string) {
	m := r.m
	var sockets, subchannels int64
	m.mu.Lock()
	if i := slices.Index(r.sockets, c); i >= 0 {
		r.sockets = slices.Delete(r.sockets, i, i+1)
		sockets = -1
	}
	m.stats.SocketsClosed++
	m.emitLocked(r, Event{Kind: KindSocketClose, RefsBefore: r.refs, RefsAfter: r.refs, Reason: reason, Socket: c.ref()})
	if m.maybeDestroyLocked(r) {
		subchannels = -1
	}
	m.mu.Unlock()
	m.recordOpen(subchannels, sockets)
}
