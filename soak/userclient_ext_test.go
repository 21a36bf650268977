package soak_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/soak"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/keepalive"
)

// userService is the user's own service on every backend: it counts the
// calls it served.
type userService struct {
	testgrpc.UnimplementedTestServiceServer
	calls atomic.Int64
}

func (s *userService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.calls.Add(1)
	return &testpb.SimpleResponse{}, nil
}

// guardedWRR is a user's own service config: the guard over grpc's
// weighted_round_robin with its parameters.
const guardedWRR = `{"loadBalancingConfig":[{"leakproof_guard":{
	"childPolicy":[{"weighted_round_robin":{"enableOobLoadReport":false,"blackoutPeriod":"1s","weightUpdatePeriod":"0.2s"}}],
	"drainTimeout":"1s","orphanTimeout":"500ms"}}]}`

// TestSoakRunsTheUsersClient soaks a user's client: its service config,
// its dial options (keepalive and a counting interceptor), its service on
// every backend and its RPC as the load, over TLS.
func TestSoakRunsTheUsersClient(t *testing.T) {
	svc := &userService{}
	var intercepted atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == testgrpc.TestService_UnaryCall_FullMethodName {
			intercepted.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	var tr bytes.Buffer
	res := soak.Verify(t, soak.Config{
		Duration:      soakDuration(t, 5*time.Second),
		Trace:         &tr,
		ServiceConfig: guardedWRR,
		DialOptions: []grpc.DialOption{
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second}),
			grpc.WithChainUnaryInterceptor(count),
		},
		RegisterServices: func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, svc) },
		Load: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testpb.SimpleRequest{})
			return err
		},
		TLS:    true,
		Faults: []soak.Fault{soak.FaultGoAway, soak.FaultReset, soak.FaultRestart, soak.FaultTLS},
	})
	if res == nil {
		return
	}
	if res.Policy != "leakproof_guard:weighted_round_robin" || res.SocketLimit != 1 {
		t.Errorf("policy %q, socket limit %d; want the service config's leakproof_guard:weighted_round_robin, limit 1", res.Policy, res.SocketLimit)
	}
	if time.Duration(res.RemovalBound) != 2*time.Second {
		t.Errorf("removal bound %v, want the config's drainTimeout 1s plus 1s slack", time.Duration(res.RemovalBound))
	}
	if !res.TLS || !strings.HasPrefix(res.Target, "soak:///") {
		t.Errorf("TLS %v, target %q; want TLS and the manual resolver's soak:/// target", res.TLS, res.Target)
	}
	// Under TLS the soak's channels read the frames above TLS
	// (subconn.Credentials): a GOAWAY is a goaway, and a backend stopped
	// (close_notify, then FIN) is peer_closed; nothing is inferred.
	ev, err := trace.Read(&tr)
	if err != nil {
		t.Fatal(err)
	}
	causes := map[trace.Cause]int{}
	for _, e := range ev {
		if e.Kind == trace.KindGoAway {
			causes[e.Cause]++
		}
	}
	if causes[trace.CauseGoAway] == 0 || causes[trace.CauseGoAwayInferred] != 0 {
		t.Errorf("GOAWAYs by cause under TLS: %v; want every one read (%s), none %s", causes, trace.CauseGoAway, trace.CauseGoAwayInferred)
	}
	served, seen := svc.calls.Load(), intercepted.Load()
	t.Logf("%d user RPCs served, %d seen by the user's interceptor, %d OK by the soak", served, seen, res.RPCs.OK)
	if served < 100 || seen < 100 {
		t.Errorf("the user's service served %d calls and its interceptor saw %d: the load is not the user's RPC on the user's channel", served, seen)
	}
}

// TestBadServiceConfigStartsNothing: a service config grpc would reject is
// an error before anything starts, naming what is wrong.
func TestBadServiceConfigStartsNothing(t *testing.T) {
	for _, tc := range []struct {
		name, sc, want string
	}{
		{"not JSON", `{"loadBalancingConfig":`, "service config"},
		{"unknown policy", `{"loadBalancingConfig":[{"no_such_policy":{}}]}`, "no_such_policy"},
		{"bad parameter", `{"loadBalancingConfig":[{"leakproof_round_robin":{"drainTimeout":"forever"}}]}`, "drainTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := soak.Run(context.Background(), soak.Config{ServiceConfig: tc.sc})
			if res != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run() = %v, %v; want no result and an error containing %q", res, err, tc.want)
			}
		})
	}
}

// TestUserPolicyPassesEveryFault soaks a policy registered by this test
// package, which does not leak, through every fault: the starve child must
// find it registered, and the tls fault must not depend on how its picker
// words an error.
func TestUserPolicyPassesEveryFault(t *testing.T) {
	res := soak.Verify(t, soak.Config{
		Duration:      soakDuration(t, allFaultsDuration),
		ServiceConfig: `{"loadBalancingConfig":[{"` + userPolicy + `":{}}]}`,
	})
	if res != nil && res.Policy != userPolicy {
		t.Errorf("policy %q, want %q", res.Policy, userPolicy)
	}
}

// TestUserDialerIsComposed: a user's dialer (Config.Dialer) dials every
// socket of the channels under test, and the soak still tracks them: the
// main channel's sockets are attributed to it and booked as the client's.
func TestUserDialerIsComposed(t *testing.T) {
	var dials atomic.Int64
	res := soak.Verify(t, soak.Config{
		Duration: soakDuration(t, 3*time.Second),
		Dialer: func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		Faults: []soak.Fault{soak.FaultGoAway, soak.FaultReset},
	})
	if res == nil {
		return
	}
	var mainSockets, clientFDs int
	for _, s := range res.Samples {
		for _, n := range s.Sockets {
			mainSockets = max(mainSockets, n)
		}
		clientFDs = max(clientFDs, s.ClientFDs)
	}
	t.Logf("%d dials by the user's dialer; at most %d main-channel sockets to a backend, %d client descriptors booked", dials.Load(), mainSockets, clientFDs)
	if dials.Load() == 0 {
		t.Errorf("the user's dialer was never called")
	}
	if mainSockets == 0 || clientFDs == 0 {
		t.Errorf("no socket attributed to the main channel (%d) or booked as the client's (%d): the user's dialer bypassed the soak's tracking", mainSockets, clientFDs)
	}
}

// TestTakeoverDialOptionIsRefused: an option that would take over what the
// soak watches the channel with is an error naming it, before anything
// starts.
func TestTakeoverDialOptionIsRefused(t *testing.T) {
	for name, opt := range map[string]grpc.DialOption{
		"grpc.WithContextDialer": grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			t.Error("the refused dialer was called")
			return nil, errors.New("refused")
		}),
		"grpc.WithTransportCredentials": grpc.WithTransportCredentials(insecure.NewCredentials()),
		"grpc.WithDefaultServiceConfig": grpc.WithDefaultServiceConfig(guardedWRR),
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			res, err := soak.Run(context.Background(), soak.Config{
				DialOptions: []grpc.DialOption{grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second}), opt},
			})
			if res != nil || err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "DialOptions[1]") {
				t.Fatalf("Run() returned a result: %v, error %v; want no result and an error naming DialOptions[1], %s", res != nil, err, name)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Run took %v to refuse: something started", d)
			}
			t.Log(err)
		})
	}
}
