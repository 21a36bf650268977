package soak

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// A client is one channel of the run.
type client struct {
	name   string
	target string
	ch     *chanRec
	res    *manual.Resolver
	cc     *grpc.ClientConn
	echo   echov1.EchoServiceClient
	stats  *rpcCounters
}

type rpcCounters struct {
	ok, failed, retries, streams atomic.Int64

	mu     sync.Mutex
	byCode map[codes.Code]int64 // failed RPCs by final status code
}

// fail counts one RPC that failed with err after its retries.
func (c *rpcCounters) fail(err error) {
	c.failed.Add(1)
	c.mu.Lock()
	if c.byCode == nil {
		c.byCode = map[codes.Code]int64{}
	}
	c.byCode[status.Code(err)]++
	c.mu.Unlock()
}

func (c *rpcCounters) snapshot() RPCStats {
	s := RPCStats{OK: c.ok.Load(), Failed: c.failed.Load(), Retries: c.retries.Load(), Streams: c.streams.Load()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byCode) > 0 {
		s.FailedByCode = make(map[string]int64, len(c.byCode))
		for code, n := range c.byCode {
			s.FailedByCode[code.String()] = n
		}
	}
	return s
}

// dial makes a channel named name of the run with service config sc on
// the run's feed (a manual resolver, DNS or the xDS control plane),
// dialing through the socket tracker and subconn.Dialer (over
// Config.Dialer) with creds (nil: the run's, Config.TLS), with the retry
// interceptor (and the logging interceptor for final failures).
// Config.DialOptions come after the soak's connect parameters; the options
// that would take over what comes after them were refused by
// checkDialOptions.
func (r *runner) dial(name, kind, sc string, state resolver.State, creds credentials.TransportCredentials, stats *rpcCounters) (*client, error) {
	c := &client{name: name, target: r.prefix + name, ch: r.socks.register(name, kind), stats: stats}
	target, feedOpts, err := r.feed.dial(c, kind, sc, state)
	if err != nil {
		return nil, fmt.Errorf("soak: channel %s: %w", name, err)
	}
	c.target = target
	if creds == nil {
		creds = r.clientCreds
	}
	opts := []grpc.DialOption{
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	}
	opts = append(opts, r.cfg.DialOptions...)
	opts = append(opts, feedOpts...)
	opts = append(opts,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(r.socks.dialer(c.ch, r.cfg.Dialer)),
	)
	if kind != kindTLS {
		opts = append(opts, r.interceptors(c)...)
	}
	cc, err := grpc.NewClient(c.target, opts...)
	if err != nil {
		return nil, fmt.Errorf("soak: channel %s: %w", name, err)
	}
	c.cc = cc
	c.echo = echov1.NewEchoServiceClient(cc)
	cc.Connect()
	return c, nil
}

// mainTarget is the target the main channel dialed, if it was dialed.
func (r *runner) mainTarget() string {
	if r.main.c == nil {
		return ""
	}
	return r.main.c.target
}

// closeChannel closes c and starts checking that its sockets go.
func (r *runner) closeChannel(c *client) {
	if c == nil || c.cc == nil {
		return
	}
	c.cc.Close()
	r.mu.Lock()
	r.closing = append(r.closing, &closedCheck{ch: c.ch, at: time.Now()})
	r.mu.Unlock()
}
