package subconn

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/resolver"
)

var logger = grpclog.Component("leakproof")

// DefaultDrainTimeout is how long the sockets of a shut-down subchannel may
// stay open (grpc closes them gracefully only when their last stream ends,
// with no bound) before the manager force-closes them. 30 seconds matches the
// default Kubernetes termination grace period: by then a removed backend is
// itself going away. It applies only to sockets opened through Dialer.
const DefaultDrainTimeout = 30 * time.Second

// DefaultTraceRing is the number of recent events each manager keeps.
const DefaultTraceRing = 512

var (
	// ErrClosed is returned (wrapped) by calls on a closed Manager.
	ErrClosed = errors.New("subconn: manager is closed")
	// ErrReleased is returned (wrapped) when a SubConn is released twice.
	ErrReleased = errors.New("subconn: SubConn already released")
)

// Process-wide ids; never reused.
var nextManagerID, nextSubchannelID, nextSocketID atomic.Uint64

// An Option configures a Manager.
type Option func(*options)

type options struct {
	drainTimeout time.Duration
	ringSize     int
	target       string
}

// WithDrainTimeout sets how long sockets of a shut-down subchannel may stay
// open before they are force-closed; d <= 0 disables the bound (grpc's own
// behaviour: a stream that never ends keeps its socket open forever).
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// WithTraceRing sets how many recent events the manager keeps for Trace and
// the admin service; 0 keeps none (and with no subscriber, tracing costs
// nothing).
func WithTraceRing(n int) Option { return func(o *options) { o.ringSize = n } }

// WithTarget sets the channel target shown in traces and snapshots (default
// the ClientConn's Target()).
func WithTarget(target string) Option { return func(o *options) { o.target = target } }

// A Manager owns every SubConn of one balancer: one live subchannel per
// backend key, reference counted, shut down exactly once when its last holder
// releases it.
//
// All methods are safe for concurrent use. The manager never calls into grpc
// or into a holder while holding its own lock.
type Manager struct {
	// Initialized at build time, read-only after.
	id          uint64
	cc          balancer.ClientConn
	target      string
	cq          callbackQueue // holder listeners run here, in order
	recorder    estats.MetricsRecorder
	stopMetrics func() // unregisters the gauges; called when the manager leaves the registry

	// Gauges, written under mu and read without it.
	openSubchannels, openSockets atomic.Int64

	mu           sync.Mutex
	settled      sync.Cond // on mu: a record finished NewSubConn or Shutdown
	closed       bool
	drainTimeout time.Duration
	live         keyMap[*record]    // held (or being created) subchannels by key
	all          map[uint64]*record // every subchannel not yet destroyed
	ring         ring
	stats        Stats
}

// NewManager returns a manager that creates SubConns on cc. The balancer that
// owns it must call Close from its own Close.
func NewManager(cc balancer.ClientConn, opts ...Option) *Manager {
	o := options{drainTimeout: DefaultDrainTimeout, ringSize: DefaultTraceRing}
	for _, opt := range opts {
		opt(&o)
	}
	if o.target == "" && cc != nil {
		o.target = cc.Target()
	}
	m := &Manager{
		id:           nextManagerID.Add(1),
		cc:           cc,
		target:       o.target,
		drainTimeout: o.drainTimeout,
		live:         newKeyMap[*record](),
		all:          make(map[uint64]*record),
		ring:         ring{size: max(o.ringSize, 0)},
	}
	m.settled.L = &m.mu
	m.startMetrics()
	m.mu.Lock()
	m.emitLocked(nil, KindManagerOpen, 0, 0, "", "", nil)
	m.mu.Unlock()
	register(m)
	return m
}

// ID returns the manager's process-wide id, as traces print it.
func (m *Manager) ID() uint64 { return m.id }

// Target returns the channel target the manager serves.
func (m *Manager) Target() string { return m.target }

// SetDrainTimeout changes the drain timeout for subchannels shut down from
// now on (see WithDrainTimeout).
func (m *Manager) SetDrainTimeout(d time.Duration) {
	m.mu.Lock()
	m.drainTimeout = d
	m.mu.Unlock()
}

// SetTraceRing changes the number of recent events kept (see WithTraceRing).
func (m *Manager) SetTraceRing(n int) {
	m.mu.Lock()
	m.ring.resize(n)
	m.mu.Unlock()
}

// Trace returns the events in the manager's ring, oldest first.
func (m *Manager) Trace() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring.events()
}

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

// An AcquireOption configures one Acquire.
type AcquireOption func(*acquireOpts)

type acquireOpts struct {
	listener      func(balancer.SubConnState)
	autoReconnect bool
	reason        string
	nsOpts        balancer.NewSubConnOptions
	bind          func(*SubConn) // called with the handle before any update is queued
}

// WithStateListener sets the function that receives this holder's state
// updates. Updates run one at a time, in order, never with the manager's
// lock held; after the holder releases, exactly one final SHUTDOWN update is
// delivered and nothing after it.
func WithStateListener(f func(balancer.SubConnState)) AcquireOption {
	return func(o *acquireOpts) { o.listener = f }
}

// WithAutoReconnect asks the manager to call Connect on the same subchannel
// whenever it goes IDLE (after a GOAWAY, a lost connection or a backoff) while
// this holder holds it. The first connection is still the holder's to start,
// with Connect.
func WithAutoReconnect() AcquireOption { return func(o *acquireOpts) { o.autoReconnect = true } }

// WithReason records why the reference is taken, in the trace.
func WithReason(reason string) AcquireOption { return func(o *acquireOpts) { o.reason = reason } }

// Acquire returns a handle on the subchannel for addr's backend key (Addr,
// ServerName and Attributes; BalancerAttributes are ignored), creating it if
// no live one exists. holder names who takes the reference, in the trace and
// in snapshots. Each handle is one reference: Release it exactly once.
func (m *Manager) Acquire(addr resolver.Address, holder string, opts ...AcquireOption) (*SubConn, error) {
	var o acquireOpts
	for _, opt := range opts {
		opt(&o)
	}
	return m.acquire(addr, holder, o)
}

func (m *Manager) acquire(addr resolver.Address, holder string, o acquireOpts) (*SubConn, error) {
	ka := keyAddr(addr)
	if ka.Addr == "" {
		return nil, fmt.Errorf("subconn: acquire for %q: empty address", holder)
	}
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
		if r.sc == nil || r.shutdown {
			// Another goroutine is creating it or shutting it down: wait, so
			// that a key never has two SubConns that are not shut down.
			m.settled.Wait()
			continue
		}
		h := m.refLocked(r, holder, o)
		m.mu.Unlock()
		m.cq.kick(false)
		return h, nil
	}
	r := &record{
		m:       m,
		id:      nextSubchannelID.Add(1),
		addr:    ka,
		key:     keyString(ka),
		created: time.Now(),
		state:   connectivity.Idle,
	}
	m.live.set(ka, r)
	m.mu.Unlock()

	stamped := addr
	stamped.Attributes = ka.Attributes.WithValue(ownerKey{}, r)
	nso := o.nsOpts
	nso.StateListener = r.onState
	sc, err := m.cc.NewSubConn([]resolver.Address{stamped}, nso)

	m.mu.Lock()
	m.settled.Broadcast()
	if err != nil {
		m.live.remove(ka, func(x *record) bool { return x == r })
		m.mu.Unlock()
		return nil, fmt.Errorf("subconn: acquire %s for %q: %w", r.key, holder, err)
	}
	r.sc = sc
	m.all[r.id] = r
	m.openSubchannels.Add(1)
	m.stats.Created++
	m.emitLocked(r, KindCreate, 0, 0, holder, o.reason, nil)
	if m.closed { // Close ran while NewSubConn did: nobody may hold it.
		m.markShutdownLocked(r, holder, "manager closed while the subchannel was being created")
		m.mu.Unlock()
		m.shutdownRecord(r)
		return nil, fmt.Errorf("subconn: acquire %s for %q: %w", r.key, holder, ErrClosed)
	}
	h := m.refLocked(r, holder, o)
	m.mu.Unlock()
	m.cq.kick(false)
	return h, nil
}

// refLocked adds a handle for holder on r. Caller must hold m.mu.
func (m *Manager) refLocked(r *record, holder string, o acquireOpts) *SubConn {
	h := &SubConn{SubConn: r.sc, rec: r, holder: holder, listener: o.listener, autoReconnect: o.autoReconnect, queued: connectivity.Idle}
	if o.bind != nil {
		o.bind(h)
	}
	r.holders = append(r.holders, h)
	r.refs++
	if o.autoReconnect {
		r.autoReconnect++
	}
	m.stats.Refs++
	m.emitLocked(r, KindRef, r.refs-1, r.refs, holder, o.reason, nil)
	if r.state != connectivity.Idle {
		// The holder believes a new SubConn is IDLE; tell it the truth.
		m.queueStateLocked(h, balancer.SubConnState{ConnectivityState: r.state, ConnectionError: r.lastErr})
	}
	return h
}

// queueStateLocked queues a state update for h unless h already has it.
// Caller must hold m.mu.
func (m *Manager) queueStateLocked(h *SubConn, st balancer.SubConnState) {
	if h.listener == nil || h.queued == st.ConnectivityState {
		return
	}
	h.queued = st.ConnectivityState
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
			return fmt.Errorf("subconn: release %s by %q after the manager closed: %w", r.key, h.holder, ErrReleased)
		}
		return fmt.Errorf("subconn: release %s by %q: %w", r.key, h.holder, ErrReleased)
	}
	shut := m.unrefLocked(h, KindUnref, reason)
	m.mu.Unlock()
	if shut {
		m.shutdownRecord(r)
	}
	m.cq.kick(false)
	return nil
}

// unrefLocked drops h's reference and reports whether the caller must now
// call shutdownRecord. Caller must hold m.mu.
func (m *Manager) unrefLocked(h *SubConn, kind Kind, reason string) bool {
	r := h.rec
	h.released.Store(true)
	if i := slices.Index(r.holders, h); i >= 0 {
		r.holders = slices.Delete(r.holders, i, i+1)
	}
	if h.autoReconnect {
		r.autoReconnect--
	}
	r.refs--
	m.stats.Unrefs++
	if kind == KindLeak {
		m.stats.Leaks++
	}
	m.emitLocked(r, kind, r.refs+1, r.refs, h.holder, reason, nil)
	if l := h.listener; l != nil && !m.closed && !h.orphaned.Load() {
		m.cq.add(func() { l(balancer.SubConnState{ConnectivityState: connectivity.Shutdown}) })
	}
	if r.refs > 0 {
		return false
	}
	m.markShutdownLocked(r, h.holder, reason)
	return true
}

// markShutdownLocked decides that r is shut down. r stays in m.live until
// Shutdown has returned. Caller must hold m.mu and then call shutdownRecord
// without it.
func (m *Manager) markShutdownLocked(r *record, holder, reason string) {
	r.shutdown = true
	r.shutdownAt = time.Now()
	m.stats.Shutdowns++
	m.emitLocked(r, KindShutdown, 0, 0, holder, reason, nil)
}

// shutdownRecord calls Shutdown on r's SubConn. It is called exactly once per
// record, by the goroutine that marked it shut down, without m.mu (grpc may
// close sockets synchronously, which reports back to the manager).
func (m *Manager) shutdownRecord(r *record) {
	r.sc.Shutdown()
	m.mu.Lock()
	m.live.remove(r.addr, func(x *record) bool { return x == r })
	m.settled.Broadcast()
	if !m.maybeDestroyLocked(r) && r.drainTimer == nil && m.drainTimeout > 0 {
		d := m.drainTimeout
		r.drainTimer = time.AfterFunc(d, func() { m.drainExpired(r, d) })
	}
	m.mu.Unlock()
}

// drainExpired force-closes the sockets r still holds after the drain timeout.
func (m *Manager) drainExpired(r *record, d time.Duration) {
	m.mu.Lock()
	if r.destroyed {
		m.mu.Unlock()
		return
	}
	r.drainExpired = true
	socks := slices.Clone(r.sockets)
	m.stats.DrainTimeouts++
	if m.tracingLocked() {
		m.emitLocked(r, KindDrainTimeout, 0, 0, "", fmt.Sprintf("%d socket(s) still open %v after Shutdown; force-closing", len(socks), d), nil)
	}
	m.mu.Unlock()
	m.recordLeaks(leakDrainTimeoutSocket, len(socks))
	for _, c := range socks {
		c.forceClose()
	}
}

// maybeDestroyLocked writes destroy once r is released, shut down and owns
// no socket. Caller must hold m.mu.
func (m *Manager) maybeDestroyLocked(r *record) bool {
	if r.destroyed || !r.shutdown || r.refs > 0 || len(r.sockets) > 0 || r.dialing > 0 {
		return false
	}
	r.destroyed = true
	if r.drainTimer != nil {
		r.drainTimer.Stop()
	}
	delete(m.all, r.id)
	m.openSubchannels.Add(-1)
	m.stats.Destroyed++
	m.emitLocked(r, KindDestroy, 0, 0, "", "", nil)
	if m.closed && len(m.all) == 0 {
		m.retireLocked()
	}
	return true
}

// onState is the one StateListener of r's real SubConn. grpc calls it from
// its serializer, so it may run holder listeners synchronously.
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
	m.emitLocked(r, KindState, r.refs, r.refs, "", reason, nil)
	var lost string
	if old == connectivity.Ready && r.state == connectivity.Idle {
		kind, cause := r.lossCauseLocked()
		r.lost++
		r.lastLoss = cause
		lost = cause
		m.stats.countLoss(cause)
		m.emitLocked(r, kind, r.refs, r.refs, "", cause, nil)
	}
	for _, h := range r.holders {
		m.queueStateLocked(h, s)
	}
	var reconnect balancer.SubConn
	if r.state == connectivity.Idle && r.autoReconnect > 0 && !m.closed {
		reconnect = r.sc
		r.connectPending = true
		m.emitLocked(r, KindConnect, r.refs, r.refs, "", "auto-reconnect", nil)
	}
	m.mu.Unlock()
	if lost != "" {
		m.recordLoss(lost)
	}
	if reconnect != nil {
		reconnect.Connect()
	}
	m.cq.kick(true)
}

// The loss causes, as the first word of conn_lost/goaway reasons and as the
// keys of Stats.ConnectionsLost.
const (
	CauseGoAway  = "goaway"          // the server sent GOAWAY
	CauseEOF     = "peer_closed"     // the server closed the socket (FIN)
	CauseReset   = "reset"           // the connection was reset (RST)
	CauseLocal   = "client_closed"   // the client closed the socket (keepalive timeout, transport error)
	CauseUnknown = "unknown"         // no socket tracking: install Dialer to tell causes apart
	CauseReadErr = "read_error"      // another read error
	causeInfer   = "goaway_inferred" // socket still open while the transport drains (TLS hides frames)
)

// lossCauseLocked classifies a READY→IDLE transition from the subchannel's
// current socket. Caller must hold m.mu.
func (r *record) lossCauseLocked() (Kind, string) {
	c := r.lastSocket
	if c == nil {
		return KindConnLost, CauseUnknown + ": install subconn.Dialer to tell GOAWAY from a closed socket"
	}
	return c.lossCause()
}

// failureCauseLocked describes a CONNECTING→TRANSIENT_FAILURE transition.
// Caller must hold m.mu.
func (r *record) failureCauseLocked(err error) string {
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	if !r.dialSeen {
		return msg
	}
	if c := r.lastSocket; c != nil && !c.opened.Before(r.connectingSince) {
		return "handshake failed: " + msg
	}
	if r.lastDialErr != nil {
		return "connect failed: " + msg
	}
	return msg
}

// SubConn handle operations.

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
	m.emitLocked(r, KindConnect, r.refs, r.refs, h.holder, "", nil)
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
	m.cq.kick(false)
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
	m.cq.kick(true)
}

// Close releases every reference still held, shuts every subchannel down and
// returns an error naming each holder that had not released (each is also a
// leak event in the trace). Close is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.cq.close()
	var held []*SubConn
	m.live.all(func(r *record) {
		if r.sc != nil && !r.shutdown { // a record being created is shut down by its creator
			held = append(held, r.holders...)
		}
	})
	var leaks []string
	var shut []*record
	for _, h := range held {
		leaks = append(leaks, fmt.Sprintf("#%d %s held by %q", h.rec.id, h.rec.key, h.holder))
		if m.unrefLocked(h, KindLeak, "manager closed before the holder released") {
			shut = append(shut, h.rec)
		}
	}
	m.emitLocked(nil, KindManagerClose, 0, 0, "", "", nil)
	m.mu.Unlock()
	for _, r := range shut {
		m.shutdownRecord(r)
	}
	m.mu.Lock()
	if len(m.all) == 0 {
		m.retireLocked()
	}
	m.mu.Unlock()
	m.recordLeaks(leakUnreleasedHolder, len(leaks))
	if len(leaks) > 0 {
		return fmt.Errorf("subconn: close: %d reference(s) never released: %s", len(leaks), strings.Join(leaks, "; "))
	}
	return nil
}

// retireLocked takes a closed manager with no subchannel left out of the
// registry and stops its metrics. Caller must hold m.mu.
func (m *Manager) retireLocked() {
	unregister(m)
	if m.stopMetrics != nil {
		m.stopMetrics()
		m.stopMetrics = nil
	}
}

// tracingLocked reports whether events are recorded at all. Caller must hold
// m.mu.
func (m *Manager) tracingLocked() bool { return m.ring.size > 0 || listening() }

// emitLocked records an event. r may be nil for manager events. Caller must
// hold m.mu, which keeps a manager's events in seq order.
func (m *Manager) emitLocked(r *record, kind Kind, before, after int, holder, reason string, sock *SocketRef) {
	if !m.tracingLocked() {
		return
	}
	e := Event{
		Seq:        hub.seq.Add(1),
		Time:       time.Now(),
		Manager:    m.id,
		Target:     m.target,
		Kind:       kind,
		RefsBefore: before,
		RefsAfter:  after,
		Holder:     holder,
		Reason:     reason,
		Socket:     sock,
	}
	if r != nil {
		e.Subchannel, e.Key, e.State = r.id, r.key, r.state.String()
	}
	m.ring.add(e)
	if listening() {
		publish(e)
	}
}

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
		m.maybeDestroyLocked(r)
		m.mu.Unlock()
		return nil, err
	}
	c := newTrackedConn(conn, r)
	m.mu.Lock()
	r.dialing--
	r.sockets = append(r.sockets, c)
	m.openSockets.Add(1)
	r.lastSocket = c
	m.stats.SocketsOpened++
	reason := ""
	if r.shutdown {
		reason = "opened after Shutdown (dial was in flight)"
		if r.drainTimer == nil && m.drainTimeout > 0 {
			d := m.drainTimeout
			r.drainTimer = time.AfterFunc(d, func() { m.drainExpired(r, d) })
		}
	}
	m.emitLocked(r, KindSocketOpen, r.refs, r.refs, "", reason, c.ref())
	closeNow := r.shutdown && r.drainExpired
	m.mu.Unlock()
	if closeNow {
		c.forceClose()
		return nil, fmt.Errorf("subconn: subchannel #%d %s shut down while dialing", r.id, r.key)
	}
	return c, nil
}

// socketClosed accounts for a closed socket.
func (r *record) socketClosed(c *trackedConn, reason string) {
	m := r.m
	m.mu.Lock()
	if i := slices.Index(r.sockets, c); i >= 0 {
		r.sockets = slices.Delete(r.sockets, i, i+1)
		m.openSockets.Add(-1)
	}
	m.stats.SocketsClosed++
	m.emitLocked(r, KindSocketClose, r.refs, r.refs, "", reason, c.ref())
	m.maybeDestroyLocked(r)
	m.mu.Unlock()
}
