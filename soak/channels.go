package soak

import (
	"fmt"
	"sync/atomic"
	"time"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
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

type rpcCounters struct{ ok, failed, retries, streams atomic.Int64 }

func (c *rpcCounters) snapshot() RPCStats {
	return RPCStats{OK: c.ok.Load(), Failed: c.failed.Load(), Retries: c.retries.Load(), Streams: c.streams.Load()}
}

// dial makes a channel named name of the run with policy on a manual
// resolver, dialing through the socket tracker and subconn.Dialer, with the
// retry interceptor (and the logging interceptor for final failures).
func (r *runner) dial(name, kind, policy string, state resolver.State, creds credentials.TransportCredentials, stats *rpcCounters) (*client, error) {
	c := &client{name: name, target: r.prefix + name, ch: r.socks.register(name, kind), stats: stats}
	c.res = manual.NewBuilderWithScheme("soak")
	c.res.InitialState(state)
	opts := []grpc.DialOption{
		grpc.WithResolvers(c.res),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig(policy, r.cfg.DrainTimeout)),
		grpc.WithContextDialer(r.socks.dialer(c.ch)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	}
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

// serviceConfig names policy; the leakproof policies get the drain timeout.
func serviceConfig(policy string, drain time.Duration) string {
	cfg := "{}"
	if isLeakproof(policy) {
		cfg = fmt.Sprintf(`{"drainTimeout":%q}`, drain.String())
	}
	return fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, policy, cfg)
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
