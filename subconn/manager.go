package subconn

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/grpclog"
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

// A Manager owns every SubConn of one balancer: one live subchannel per
// backend key, reference counted, shut down exactly once when its last holder
// releases it.
//
// All methods are safe for concurrent use. The manager never calls into grpc
// or into a holder while holding its own lock.
type Manager struct {
	// Initialized at build time, read-only after.
	id       uint64
	cc       balancer.ClientConn
	target   string
	cq       callbackQueue          // holder listeners run here, in order
	recorder estats.MetricsRecorder // nil: no metrics
	direct   bool                   // cc is the channel's own (isChannelCC): stamp at NewSubConn

	// The gauges' labels: the target, then the placement's backend service
	// and locality. Set at build time, replaced once by SetPlacement.
	labels atomic.Pointer[[]string]

	mu           sync.Mutex
	settled      sync.Cond // on mu: a record finished NewSubConn or Shutdown
	closed       bool
	drainTimeout time.Duration
	placement    Placement       // see SetPlacement
	live         keyMap[*record] // held (or being created) subchannels by key
	ring         trace.Ring
	pub          trace.Event // the event being published (see emitLocked)
	stats        trace.Stats
	// Every subchannel created and not yet destroyed is either in live or,
	// once Shutdown has returned, in draining (its sockets still open).
	draining    map[*record]struct{}
	undestroyed int // subchannels created and not yet destroyed

	// Initialized at build time, read-only after: the origin of the
	// records' times, which are kept as nanoseconds since (clock).
	base time.Time
}

// NewManager returns a manager that creates SubConns on cc, for a balancer
// to build in Build (with WithTarget(opts.Target.String()) so traces name
// the channel) and close in its own Close.
func NewManager(cc balancer.ClientConn, opts ...Option) *Manager {
	o := options{drainTimeout: DefaultDrainTimeout, ringSize: DefaultTraceRing}
	for _, opt := range opts {
		opt.apply(&o)
	}
	m := &Manager{
		id:           nextManagerID.Add(1),
		cc:           cc,
		direct:       isChannelCC(cc),
		target:       o.target,
		drainTimeout: o.drainTimeout,
		live:         newKeyMap[*record](),
		draining:     make(map[*record]struct{}),
		base:         time.Now(),
	}
	m.ring.Resize(o.ringSize)
	m.settled.L = &m.mu
	m.startMetrics()
	m.mu.Lock()
	m.emitLocked(nil, trace.Event{Kind: trace.KindManagerOpen})
	m.mu.Unlock()
	register(m)
	return m
}

// Serialize runs f, and holds back until it returns the updates that
// holders' own calls cause (the state a holder is told at its first Connect,
// the SHUTDOWN after a Release), which the manager otherwise delivers from a
// goroutine of its own. A parent that makes every call into its child policy
// (UpdateClientConnState, ResolverError, ExitIdle, Close) through Serialize
// gives the child grpc's guarantee that its listeners never run during one
// of its own balancer calls; updates from grpc come from grpc's serializer,
// which makes those calls too. The guard does this. f must not wait for a
// listener to run.
func (m *Manager) Serialize(f func()) {
	m.cq.serial.Lock()
	defer m.cq.serial.Unlock()
	f()
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
	m.ring.Resize(n)
	m.mu.Unlock()
}

// Trace returns the events in the manager's ring, oldest first.
func (m *Manager) Trace() []trace.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ring.Events()
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
		if r.made && !r.shutdown { // a record being created is shut down by its creator
			for h := r.holders; h != nil; h = h.next {
				held = append(held, h)
			}
		}
	})
	var leaks []string
	var shut []*SubConn // the last handle of each record to shut down
	for _, h := range held {
		leaks = append(leaks, fmt.Sprintf("#%d %s held by %q", h.rec.id, h.rec.key(), h.holder))
		if m.unrefLocked(h, trace.KindLeak, "manager closed before the holder released") {
			shut = append(shut, h)
		}
	}
	m.emitLocked(nil, trace.Event{Kind: trace.KindManagerClose})
	m.mu.Unlock()
	for _, h := range shut {
		m.shutdownRecord(h.rec, h.SubConn)
	}
	m.mu.Lock()
	if m.undestroyed == 0 {
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
// registry. Caller must hold m.mu.
func (m *Manager) retireLocked() { unregister(m) }

// clock reads the manager's monotonic clock: nanoseconds since base.
func (m *Manager) clock() int64 { return int64(time.Since(m.base)) }

// at returns the time of a clock reading (with its monotonic part).
func (m *Manager) at(ns int64) time.Time { return m.base.Add(time.Duration(ns)) }
