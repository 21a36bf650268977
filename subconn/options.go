package subconn

import (
	"time"

	"google.golang.org/grpc/balancer"
)

// An Option configures a Manager. As in go.uber.org/goleak and package
// leaktest, options are values with an unexported method: every package of
// the module uses this one style.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	drainTimeout time.Duration
	ringSize     int
	target       string
}

// WithDrainTimeout sets how long sockets of a shut-down subchannel may stay
// open before they are force-closed; d <= 0 disables the bound (grpc's own
// behaviour: a stream that never ends keeps its socket open forever).
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.drainTimeout = d })
}

// WithTraceRing sets how many recent events the manager keeps for Trace and
// the admin service; 0 keeps none (and with no subscriber, tracing costs
// nothing).
func WithTraceRing(n int) Option { return optionFunc(func(o *options) { o.ringSize = n }) }

// WithTarget sets the channel target shown in traces and snapshots: pass
// opts.Target.String() from Build (the manager never calls grpc's
// deprecated ClientConn.Target).
func WithTarget(target string) Option { return optionFunc(func(o *options) { o.target = target }) }

// An AcquireOption configures one Acquire.
type AcquireOption interface {
	applyAcquire(*acquireOpts)
}

type acquireOptionFunc func(*acquireOpts)

func (f acquireOptionFunc) applyAcquire(o *acquireOpts) { f(o) }

type acquireOpts struct {
	listener      func(balancer.SubConnState)
	autoReconnect bool
	nsOpts        balancer.NewSubConnOptions
	bind          func(*SubConn) // called with the handle before any update is queued
	untilConnect  bool           // no state update before the holder's first Connect (grpc's StateListener contract)
}

// WithStateListener sets the function that receives this holder's state
// updates. Updates run one at a time, in order, never with the manager's
// lock held; after the holder releases, exactly one final SHUTDOWN update is
// delivered and nothing after it.
func WithStateListener(f func(balancer.SubConnState)) AcquireOption {
	return acquireOptionFunc(func(o *acquireOpts) { o.listener = f })
}

// WithAutoReconnect asks the manager to call Connect on the same subchannel
// whenever it goes IDLE (after a GOAWAY, a lost connection or a backoff) while
// this holder holds it. The first connection is still the holder's to start,
// with Connect.
func WithAutoReconnect() AcquireOption {
	return acquireOptionFunc(func(o *acquireOpts) { o.autoReconnect = true })
}
