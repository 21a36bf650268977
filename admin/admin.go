package admin

import (
	"sync/atomic"
	"time"

	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/grpclog"
)

var logger = grpclog.Component("leakproof-admin")

// DefaultWatchBuffer is how many events a WatchEvents stream may fall behind
// before it is dropped (see WatchBuffer).
const DefaultWatchBuffer = 4096

// DefaultGracePeriod is how long the sockets of a shut-down subchannel may
// stay open before the leak check reports them, when the request names no
// grace period. It is the manager's default drain timeout: sooner, a socket
// may just be finishing its last streams; later, the manager would have
// force-closed it.
const DefaultGracePeriod = subconn.DefaultDrainTimeout

// An Option configures the admin service.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	watchBuffer int
}

// WatchBuffer sets how many events a WatchEvents stream may fall behind
// before it is dropped (default DefaultWatchBuffer). A dropped stream ends
// with RESOURCE_EXHAUSTED and the seq to resume from; the balancers never
// wait for it. n < 1 means 1.
func WatchBuffer(n int) Option { return optionFunc(func(o *options) { o.watchBuffer = max(n, 1) }) }

// Register adds leakproof.admin.v1.AdminService to s: a live view of every
// leakproof subchannel manager in this process (the managers register
// themselves when built and disappear once closed and drained). Call it
// before s serves, as with any service.
func Register(s grpc.ServiceRegistrar, opts ...Option) {
	o := options{watchBuffer: DefaultWatchBuffer}
	for _, opt := range opts {
		opt.apply(&o)
	}
	adminv1.RegisterAdminServiceServer(s, &service{o: o})
}

// Process-wide counters of WatchEvents streams, shown by the service and the
// handler.
var watchers struct {
	active  atomic.Int64
	dropped atomic.Uint64
}

// dropPoll is how often a WatchEvents stream checks whether its subscription
// was dropped while it is blocked sending to a client that does not read.
const dropPoll = 50 * time.Millisecond
