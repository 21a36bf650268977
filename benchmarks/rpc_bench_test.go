package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// A channelImpl is how a channel of the RPC benchmarks is set up: grpc-go's
// policy with grpc's own dialer, leakproof's policy with subconn.Dialer (the
// recommended setup), or leakproof's policy without it, which shows what
// the socket-tracking dialer itself costs.
type channelImpl struct {
	impl   string
	policy string // the registered name
	dialer bool
}

func channelImpls(policy string) []channelImpl {
	return []channelImpl{
		{"grpc", policy, false},
		{"leakproof", "leakproof_" + policy, true},
		{"leakproof_nodialer", "leakproof_" + policy, false},
	}
}

var rpcPolicies = []string{"round_robin", "pick_first"}

var schemes atomic.Uint64

// channel is a ClientConn on a manual resolver.
type channel struct {
	cc     *grpc.ClientConn
	r      *manual.Resolver
	echo   echov1.EchoServiceClient
	target string
}

// dial returns a connected channel with serviceConfig and the resolver
// state st, closed at the end of tb.
func dial(tb testing.TB, serviceConfig string, st resolver.State, opts ...grpc.DialOption) *channel {
	tb.Helper()
	scheme := fmt.Sprintf("bench%d", schemes.Add(1))
	r := manual.NewBuilderWithScheme(scheme)
	r.InitialState(st)
	opts = append([]grpc.DialOption{
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
	}, opts...)
	target := scheme + ":///bench"
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		tb.Fatalf("grpc.NewClient: %v", err)
	}
	tb.Cleanup(func() { cc.Close() })
	cc.Connect()
	return &channel{cc: cc, r: r, echo: echov1.NewEchoServiceClient(cc), target: target}
}

// dialImpl dials addrs (one endpoint each) the way ci says.
func dialImpl(tb testing.TB, ci channelImpl, cfg string, addrs []string) *channel {
	var opts []grpc.DialOption
	if ci.dialer {
		opts = append(opts, grpc.WithContextDialer(subconn.Dialer(nil)))
	}
	return dial(tb, e2e.ServiceConfig(ci.policy, cfg), e2e.EndpointState(endpointsOf(addrs)...), opts...)
}

func endpointsOf(addrs []string) [][]string {
	eps := make([][]string, len(addrs))
	for i, a := range addrs {
		eps[i] = []string{a}
	}
	return eps
}

// served makes unary RPCs until every address in want has served one.
func (c *channel) served(tb testing.TB, want ...string) {
	tb.Helper()
	left := map[string]bool{}
	for _, a := range want {
		left[a] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	for len(left) > 0 {
		resp, err := c.echo.Echo(ctx, &echov1.EchoRequest{Message: "warm"}, grpc.WaitForReady(true))
		if err != nil {
			tb.Fatalf("backends %v never served: %v", left, err)
		}
		delete(left, resp.GetBackend().GetAddress())
	}
}

// startBackends starts n backends for a whole benchmark function.
func startBackends(b *testing.B, n int) []string {
	b.Helper()
	bs := e2e.StartBackends(b, n, testbackend.Name("bench"))
	return e2e.Addrs(bs)
}

var rpcConcurrency = []int{1, 8, 64}

// runConcurrent runs b.N calls of op spread over conc goroutines; each
// goroutine gets its own state from setup.
func runConcurrent[S any](b *testing.B, conc int, setup func() S, op func(S) error, teardown func(S)) {
	states := make([]S, conc)
	for i := range states {
		states[i] = setup()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(states[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for _, s := range states {
		teardown(s)
	}
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkUnary times unary Echo RPCs over loopback through grpc-go's
// round_robin and pick_first and through leakproof's, with and without the
// socket-tracking dialer, against the same 3 backends, from 1, 8 and 64
// goroutines at once. ns/op is wall time per RPC: throughput is its inverse.
func BenchmarkUnary(b *testing.B) {
	addrs := startBackends(b, 3)
	for _, policy := range rpcPolicies {
		for _, ci := range channelImpls(policy) {
			for _, conc := range rpcConcurrency {
				b.Run(fmt.Sprintf("policy=%s/impl=%s/conc=%d", policy, ci.impl, conc), func(b *testing.B) {
					c := dialImpl(b, ci, "", addrs)
					if policy == "round_robin" {
						c.served(b, addrs...)
					} else {
						c.served(b, addrs[0])
					}
					req := &echov1.EchoRequest{Message: "hello"}
					runConcurrent(b, conc, func() struct{} { return struct{}{} }, func(struct{}) error {
						_, err := c.echo.Echo(context.Background(), req)
						return err
					}, func(struct{}) {})
				})
			}
		}
	}
}

// BenchmarkStream times one message round trip on EchoStream bidi streams
// (one long-lived stream per goroutine, opened before timing), same setups as
// BenchmarkUnary. Once a stream is open no policy is involved: what differs
// is the socket under it (subconn.Dialer wraps it to watch for GOAWAY).
func BenchmarkStream(b *testing.B) {
	addrs := startBackends(b, 3)
	for _, policy := range rpcPolicies {
		for _, ci := range channelImpls(policy) {
			for _, conc := range rpcConcurrency {
				b.Run(fmt.Sprintf("policy=%s/impl=%s/conc=%d", policy, ci.impl, conc), func(b *testing.B) {
					c := dialImpl(b, ci, "", addrs)
					if policy == "round_robin" {
						c.served(b, addrs...)
					} else {
						c.served(b, addrs[0])
					}
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					req := &echov1.EchoStreamRequest{Message: "hello"}
					runConcurrent(b, conc, func() echov1.EchoService_EchoStreamClient {
						s, err := c.echo.EchoStream(ctx)
						if err != nil {
							b.Fatalf("EchoStream: %v", err)
						}
						return s
					}, func(s echov1.EchoService_EchoStreamClient) error {
						if err := s.Send(req); err != nil {
							return err
						}
						_, err := s.Recv()
						return err
					}, func(s echov1.EchoService_EchoStreamClient) {
						s.CloseSend()
						if _, err := s.Recv(); !errors.Is(err, io.EOF) {
							b.Errorf("stream ended with %v, want EOF", err)
						}
					})
				})
			}
		}
	}
}
