package subconn

import (
	"time"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// record is one real subchannel and everything the manager knows about it.
//
// It is kept small because a balancer may hold tens of thousands of them:
// what only a subchannel that connected, lost a connection or was shut down
// needs lives in recordCold, allocated at its first write (coldLocked); the
// rare parts of a key (ServerName, Attributes) live in keyExtra; times are
// nanoseconds on the manager's monotonic clock (Manager.at); holders are a
// list threaded through the handles, which also carry the real SubConn (a
// record that has none has been shut down: the goroutine that released the
// last handle passes it to shutdownRecord). 80 bytes.
type record struct {
	// Initialized at creation, read-only after.
	m       *Manager
	id      uint64
	addr    string    // the key's Addr
	ext     *keyExtra // the rest of the key; nil when it is Addr alone
	created int64     // Manager.clock reading

	// Guarded by m.mu.
	holders        *SubConn // live handles, in acquisition order (SubConn.next)
	refs           int32
	healthEpoch    int32 // the current READY period (recordCold.healthLast is for it)
	state          uint8 // a connectivity.State
	made           bool  // NewSubConn has returned the real SubConn
	connectPending bool  // Connect issued, no state change seen since
	shutdown       bool
	healthListened bool        // a real health listener is registered for healthEpoch
	cold           *recordCold // nil until coldLocked
}

// keyExtra is the part of a backend key beyond Addr, with the key's
// rendering. Most keys have none: then the key is Addr, and prints as Addr.
type keyExtra struct {
	serverName string
	attrs      *attributes.Attributes
	key        string // keyString of the whole key
}

// recordCold is what the manager keeps about a subchannel once it connects,
// loses a connection or is shut down: failure causes, the latest health
// state, the Dialer's socket bookkeeping, losses and the shutdown. A
// subchannel that has done none of these has none (all zero). Guarded by
// m.mu, like the record. Every connected subchannel has one: its fields are
// ordered, and its counts are int32, so that it is 128 bytes.
type recordCold struct {
	lastErr         error // the last state's ConnectionError
	lastDialErr     error // the last dial error, for failure causes
	connectingSince int64 // Manager.clock reading of the last CONNECTING
	healthLast      *balancer.SubConnState

	shutdownAt int64          // Manager.clock reading of markShutdownLocked
	sockets    []*trackedConn // open sockets, oldest first
	lastSocket *trackedConn   // most recently opened socket
	drainTimer *time.Timer
	lastLoss   string

	dialing      int32 // dials in flight through Dialer
	lost         int32
	destroyed    bool
	dialSeen     bool // Dialer has dialed for this subchannel
	drainExpired bool
}

// noCold is what an unwritten recordCold reads as.
var noCold recordCold

// coldLocked returns r's cold part, allocating it. Caller must hold m.mu.
func (r *record) coldLocked() *recordCold {
	if r.cold == nil {
		r.cold = new(recordCold)
	}
	return r.cold
}

// coldOrZeroLocked returns r's cold part for reading: all zero if it was
// never written. Caller must hold m.mu and must not write to the result.
func (r *record) coldOrZeroLocked() *recordCold {
	if r.cold == nil {
		return &noCold
	}
	return r.cold
}

// destroyedLocked reports whether destroy was written. Caller must hold m.mu.
func (r *record) destroyedLocked() bool { return r.cold != nil && r.cold.destroyed }

// stateLocked returns r's connectivity state. Caller must hold m.mu.
func (r *record) stateLocked() connectivity.State { return connectivity.State(r.state) }

// key returns the backend key as traces print it.
func (r *record) key() string {
	if r.ext != nil {
		return r.ext.key
	}
	return r.addr
}

func (r *record) keyAddress() resolver.Address {
	if r.ext == nil {
		return resolver.Address{Addr: r.addr}
	}
	return resolver.Address{Addr: r.addr, ServerName: r.ext.serverName, Attributes: r.ext.attrs}
}

// newRecord returns the record of key address ka (keyAddr).
func newRecord(m *Manager, ka resolver.Address) *record {
	r := &record{m: m, id: nextSubchannelID.Add(1), addr: ka.Addr, created: m.clock(), state: uint8(connectivity.Idle)}
	if ka.ServerName != "" || ka.Attributes != nil {
		r.ext = &keyExtra{serverName: ka.ServerName, attrs: ka.Attributes, key: keyString(ka)}
	}
	return r
}

// addHolderLocked appends h to r's holders. Caller must hold m.mu.
func (r *record) addHolderLocked(h *SubConn) {
	p := &r.holders
	for *p != nil {
		p = &(*p).next
	}
	*p = h
}

// removeHolderLocked takes h out of r's holders. Caller must hold m.mu.
func (r *record) removeHolderLocked(h *SubConn) {
	for p := &r.holders; *p != nil; p = &(*p).next {
		if *p == h {
			*p, h.next = h.next, nil
			return
		}
	}
}
