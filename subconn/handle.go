package subconn

import (
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"
)

// A SubConn is one holder's reference to a shared subchannel. It embeds the
// real balancer.SubConn, so it can be used wherever grpc expects one, except
// in a PickResult: a picker must return Unwrap() (grpc re-picks forever on a
// SubConn it did not create). ClientConn's pickers do that for you.
type SubConn struct {
	balancer.SubConn // the real SubConn, shared by every holder of this key

	released atomic.Bool
	orphaned atomic.Bool // released by the manager as an orphan

	// Initialized at Acquire, read-only after.
	rec           *record
	holder        string
	listener      func(balancer.SubConnState)
	autoReconnect bool

	// Guarded by the manager's mu. (The fields are ordered so that a handle
	// is 80 bytes: there is one per holder of every subchannel.)
	queued      uint8 // a connectivity.State: last state queued for listener
	waiting     bool  // untilConnect: the holder has not called Connect yet
	healthEpoch int32 // the record's READY period health was registered in
	health      func(balancer.SubConnState)
	next        *SubConn // the record's next holder (record.holders)
}

// Unwrap returns the real SubConn: what a picker must return to grpc.
func (h *SubConn) Unwrap() balancer.SubConn { return h.SubConn }

// Key returns the backend key, as traces print it: how a policy tells which
// backend a SubConn from Set.Sync is.
func (h *SubConn) Key() string { return h.rec.key() }

// Released reports whether this handle's reference is gone: released by its
// holder, or reclaimed by the manager as an orphan.
func (h *SubConn) Released() bool { return h.released.Load() }

// String names the subchannel, its backend and this handle's holder, for logs.
func (h *SubConn) String() string {
	return fmt.Sprintf("subconn #%d %s (holder %q)", h.rec.id, h.rec.key(), h.holder)
}

// Connect starts connecting the shared subchannel if it is IDLE. If it is
// already connecting, ready or in backoff, Connect does nothing and the
// holder's listener reports the state.
func (h *SubConn) Connect() { h.rec.m.connect(h) }

// Release drops this holder's reference; reason is recorded in the trace.
// When the last reference goes, the manager calls Shutdown on the real
// SubConn, exactly once. A second Release returns an error wrapping
// ErrReleased and changes nothing.
func (h *SubConn) Release(reason string) error { return h.rec.m.release(h, reason) }

// Shutdown releases this holder's reference (balancer.SubConn's contract);
// a second call, or a call after the manager reclaimed the SubConn as an
// orphan, is logged and ignored.
func (h *SubConn) Shutdown() {
	if h.orphaned.Load() {
		logger.Infof("subconn: Shutdown of %v ignored: the manager already reclaimed it as an orphan", h)
		return
	}
	if err := h.Release("Shutdown"); err != nil {
		logger.Warningf("%v", err)
	}
}

// RegisterHealthListener registers this holder's health listener for the
// current READY period. The manager registers one listener on the real
// SubConn and fans its updates out to every holder, replaying the latest to
// holders that register later. A nil listener drops this holder's listener
// only.
func (h *SubConn) RegisterHealthListener(l func(balancer.SubConnState)) {
	h.rec.m.registerHealthListener(h, l)
}

// UpdateAddresses is not supported on a shared subchannel: every holder of a
// key connects to that key. An update to the same key is a no-op; anything
// else is logged and ignored (release this SubConn and acquire the new
// address instead).
//
// Deprecated: grpc deprecates SubConn.UpdateAddresses.
func (h *SubConn) UpdateAddresses(addrs []resolver.Address) {
	if len(addrs) == 1 {
		ka := keyAddr(addrs[0])
		if sameKey(ka, h.rec.keyAddress()) {
			return
		}
	}
	logger.Errorf("subconn: UpdateAddresses(%v) on %v ignored: release it and acquire the new address", addrs, h)
}

// deliverHealth returns a queued callback delivering st to h's health
// listener if it is still registered for epoch.
func (h *SubConn) deliverHealth(st balancer.SubConnState, epoch int32) func() {
	return func() {
		m := h.rec.m
		m.mu.Lock()
		l := h.health
		ok := !h.released.Load() && h.healthEpoch == epoch && h.rec.healthEpoch == epoch
		m.mu.Unlock()
		if ok && l != nil {
			l(st)
		}
	}
}
