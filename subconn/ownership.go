package subconn

import (
	"fmt"
	"net"
	"slices"

	"github.com/leakproof/leakproof/trace"
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
	c := r.coldLocked()
	c.dialing++
	c.dialSeen = true
	return true
}

// dialDone accounts for a finished dial. It returns the connection to hand
// to grpc (wrapped), or an error.
func (r *record) dialDone(conn net.Conn, err error) (net.Conn, error) {
	m := r.m
	if err != nil {
		m.mu.Lock()
		cold := r.coldLocked()
		cold.dialing--
		cold.lastDialErr = err
		destroyed := m.maybeDestroyLocked(r)
		m.mu.Unlock()
		if destroyed {
			m.recordOpen(-1, 0)
		}
		return nil, err
	}
	c := newTrackedConn(conn, r)
	m.mu.Lock()
	cold := r.coldLocked()
	cold.dialing--
	cold.sockets = append(cold.sockets, c)
	cold.lastSocket = c
	m.stats.SocketsOpened++
	reason := ""
	if r.shutdown {
		reason = "opened after Shutdown (dial was in flight)"
		m.startDrainTimerLocked(r)
	}
	m.emitLocked(r, trace.Event{Kind: trace.KindSocketOpen, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Reason: reason, Socket: c.ref()})
	closeNow := r.shutdown && cold.drainExpired
	m.mu.Unlock()
	m.recordOpen(0, 1)
	if closeNow {
		c.forceClose()
		return nil, fmt.Errorf("subconn: subchannel #%d %s shut down while dialing", r.id, r.key())
	}
	return c, nil
}

// socketClosed accounts for a closed socket.
func (r *record) socketClosed(c *trackedConn, reason string) {
	m := r.m
	var sockets, subchannels int64
	m.mu.Lock()
	cold := r.coldLocked()
	if i := slices.Index(cold.sockets, c); i >= 0 {
		cold.sockets = slices.Delete(cold.sockets, i, i+1)
		sockets = -1
	}
	m.stats.SocketsClosed++
	m.emitLocked(r, trace.Event{Kind: trace.KindSocketClose, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Reason: reason, Socket: c.ref()})
	if m.maybeDestroyLocked(r) {
		subchannels = -1
	}
	m.mu.Unlock()
	m.recordOpen(subchannels, sockets)
}
