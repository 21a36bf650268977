package admin

import (
	"sync/atomic"
	"time"

	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	grpcadmin "google.golang.org/grpc/admin"
	"google.golang.org/grpc/grpclog"
)

var logger = grpclog.Component("leakproof-admin")

// DefaultWatchBuffer is how many events a WatchEvents stream may fall behind
// before it is dropped (see WatchBuffer).
const DefaultWatchBuffer = 4096

// DefaultMaxWatchers is how many WatchEvents streams may be open at once on
// one registered service (see MaxWatchers).
const DefaultMaxWatchers = 64

// DefaultSendTimeout is how long a WatchEvents stream may wait for its
// client to read before it is dropped (see SendTimeout).
const DefaultSendTimeout = 10 * time.Second

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
	maxWatchers int
	sendTimeout time.Duration
}

// WatchBuffer sets how many events a WatchEvents stream may fall behind
// before it is dropped (default DefaultWatchBuffer). The buffer grows on
// demand up to n. A dropped stream ends with RESOURCE_EXHAUSTED and the seq
// to resume from; the balancers never wait for it. n < 1 means 1.
func WatchBuffer(n int) Option { return optionFunc(func(o *options) { o.watchBuffer = max(n, 1) }) }

// MaxWatchers caps the WatchEvents streams open at once (default
// DefaultMaxWatchers): one more gets RESOURCE_EXHAUSTED naming the cap.
// With WatchBuffer it bounds the memory watchers can hold. n < 1 means 1.
func MaxWatchers(n int) Option { return optionFunc(func(o *options) { o.maxWatchers = max(n, 1) }) }

// SendTimeout sets how long a WatchEvents stream may wait for its client to
// take a message (default DefaultSendTimeout): a client that stops reading
// is dropped with DEADLINE_EXCEEDED and the seq to resume from, even when
// its filter lets no event through to fill its buffer. d <= 0 means the
// default.
func SendTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d <= 0 {
			d = DefaultSendTimeout
		}
		o.sendTimeout = d
	})
}

// Register adds leakproof.admin.v1.AdminService to s: a live view of every
// leakproof subchannel manager in this process (the managers register
// themselves when built and disappear once closed and drained). Call it
// before s serves, as with any service.
func Register(s grpc.ServiceRegistrar, opts ...Option) {
	adminv1.RegisterAdminServiceServer(s, newService(opts))
}

// RegisterAll adds leakproof's admin service and grpc's admin services
// (google.golang.org/grpc/admin: channelz, and CSDS when the program imports
// google.golang.org/grpc/xds) to s, so that one admin port serves both and
// `leakproof trace` and grpcdebug-style channelz tools see the same process.
// Call cleanup after s has stopped. Serve s on its own internal port, not
// on the port that serves traffic (see the package documentation).
func RegisterAll(s grpc.ServiceRegistrar, opts ...Option) (cleanup func(), err error) {
	Register(s, opts...)
	return grpcadmin.Register(s)
}

func newService(opts []Option) *service {
	o := options{watchBuffer: DefaultWatchBuffer, maxWatchers: DefaultMaxWatchers, sendTimeout: DefaultSendTimeout}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return &service{o: o}
}

// Process-wide counters of WatchEvents streams, shown by the service and the
// handler.
var watchers struct {
	active  atomic.Int64
	dropped atomic.Uint64
}
