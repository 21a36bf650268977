package subconn

import (
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// record is one real subchannel and everything the manager knows about it.
type record struct {
	// Initialized at creation, read-only after.
	m       *Manager
	id      uint64
	addr    resolver.Address // the key: Addr, ServerName, Attributes
	key     string
	created time.Time

	// Guarded by m.mu.
	sc              balancer.SubConn // nil until NewSubConn returns
	refs            int
	holders         []*SubConn // live handles, in acquisition order
	autoReconnect   int        // holders that asked for reconnect on IDLE
	state           connectivity.State
	lastErr         error
	connectPending  bool // Connect issued, no state change seen since
	connectingSince time.Time
	health          healthState
	shutdown        bool
	shutdownAt      time.Time
	destroyed       bool
	dialing         int            // dials in flight through Dialer
	dialSeen        bool           // Dialer has dialed for this subchannel
	lastDialErr     error          // the last dial error, for failure causes
	sockets         []*trackedConn // open sockets, oldest first
	lastSocket      *trackedConn   // most recently opened socket
	drainTimer      *time.Timer
	drainExpired    bool
	lost            int
	lastLoss        string
}

func (r *record) keyAddress() resolver.Address { return r.addr }

// healthState fans one real health listener out to every holder that
// registered one during the current READY period (epoch).
type healthState struct {
	epoch      int
	registered bool
	last       *balancer.SubConnState
}
