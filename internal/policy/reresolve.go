package policy

import (
	"sync"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// Limits on reresolveInterval. Below a second a resolver that honours every
// ResolveNow (the manual one, a user's) would be asked too often; grpc's dns
// resolver itself answers at most once per its minimum interval (30 s).
const (
	MinReresolveInterval = time.Second
	MaxReresolveInterval = 24 * time.Hour
)

// Reresolver is the channel as a policy sees it, plus a timer that asks the
// resolver to resolve again every interval while the channel is in use.
// grpc's dns resolver resolves only when a policy asks, so a backend removed
// from DNS while it stays healthy is otherwise kept until the channel
// closes.
//
// "In use" means: the policy is built and not closed, and the last state it
// reported is READY, so it holds a connection that may be to a backend no
// longer listed. The timer is no RPC: it never keeps grpc from putting an
// unused channel into IDLE mode, which closes the policy and so stops it.
//
// Its methods are safe for concurrent use. It never calls into grpc while
// holding its own lock, so it is a leaf in every lock order.
type Reresolver struct {
	balancer.ClientConn // the channel

	mu       sync.Mutex
	interval time.Duration // 0: off
	ready    bool
	closed   bool
	timer    *time.Timer // armed iff interval > 0 && ready && !closed
	gen      uint64      // counts armings: a stopped timer's callback sees a newer one
}

// NewReresolver returns cc with a re-resolution timer, off until
// SetInterval.
func NewReresolver(cc balancer.ClientConn) *Reresolver {
	return &Reresolver{ClientConn: cc}
}

// SetInterval sets the interval (0 turns the timer off). A changed interval
// takes effect from now.
func (r *Reresolver) SetInterval(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d == r.interval {
		return
	}
	r.interval = d
	r.stopLocked()
	r.armLocked()
}

// UpdateState records whether the policy is READY and passes s on.
func (r *Reresolver) UpdateState(s balancer.State) {
	r.mu.Lock()
	ready := s.ConnectivityState == connectivity.Ready
	if ready != r.ready {
		r.ready = ready
		if ready {
			r.armLocked()
		} else {
			r.stopLocked()
		}
	}
	r.mu.Unlock()
	r.ClientConn.UpdateState(s)
}

// Close stops the timer for good. A ResolveNow already under way may still
// reach the channel, which ignores it once the policy is closed.
func (r *Reresolver) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.stopLocked()
}

// armLocked starts the timer if it should run and does not. Caller must
// hold r.mu.
func (r *Reresolver) armLocked() {
	if r.timer != nil || r.closed || !r.ready || r.interval <= 0 {
		return
	}
	r.gen++
	gen := r.gen
	r.timer = time.AfterFunc(r.interval, func() { r.fire(gen) })
}

// stopLocked stops the timer. Caller must hold r.mu.
func (r *Reresolver) stopLocked() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// fire asks for a resolution and arms the next one, unless the timer of
// arming gen was stopped in the meantime.
func (r *Reresolver) fire(gen uint64) {
	r.mu.Lock()
	if r.timer == nil || r.gen != gen {
		r.mu.Unlock()
		return
	}
	r.timer = nil
	r.armLocked()
	r.mu.Unlock()
	r.ClientConn.ResolveNow(resolver.ResolveNowOptions{})
}
