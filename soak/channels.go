package soak

import (
	"cmp"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
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

// dial makes a channel named name of the run with policy on the run's feed
// (a manual resolver, or the xDS control plane), dialing through the socket
// tracker and subconn.Dialer, with the retry interceptor (and the logging
// interceptor for final failures).
func (r *runner) dial(name, kind, policy string, state resolver.State, creds credentials.TransportCredentials, stats *rpcCounters) (*client, error) {
	c := &client{name: name, target: r.prefix + name, ch: r.socks.register(name, kind), stats: stats}
	target, opts, err := r.feed.dial(c, kind, policy, state)
	if err != nil {
		return nil, fmt.Errorf("soak: channel %s: %w", name, err)
	}
	c.target = target
	opts = append(opts,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(r.socks.dialer(c.ch)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
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

// serviceConfig names policy with its config (policyConfig).
func serviceConfig(policy string, drain time.Duration) string {
	name, cfg := policyConfig(policy, drain)
	return fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, name, cfg)
}

// policyConfig returns the registered name and the JSON config of policy;
// the leakproof policies get the drain timeout. "leakproof_guard:<child>"
// runs child under the guard, with an orphan timeout of half the drain
// timeout, so that an orphan's sockets are closed within the removal bound
// (drain timeout plus slack) even when streams keep them draining.
func policyConfig(policy string, drain time.Duration) (name, cfg string) {
	cfg = "{}"
	if child, ok := strings.CutPrefix(policy, guardPrefix); ok {
		childCfg := cmp.Or(guardedChildConfig[child], "{}")
		cfg = fmt.Sprintf(`{"childPolicy":[{%q:%s}],"drainTimeout":%q,"orphanTimeout":%q}`, child, childCfg, drain.String(), (drain / 2).String())
		policy = guard.Name
	} else if isLeakproof(policy) {
		cfg = fmt.Sprintf(`{"drainTimeout":%q}`, drain.String())
	}
	return policy, cfg
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
