package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestInteropCasesThroughBothPolicies runs grpc-go's interop client cases
// (they abort the test binary on failure) through each leakproof policy,
// with and without the socket-tracking dialer, and through grpc-go's own
// pick_first and round_robin for comparison.
func TestInteropCasesThroughBothPolicies(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	addrs := []string{e2e.StartInterop(t), e2e.StartInterop(t), e2e.StartInterop(t)}
	for _, policy := range []string{pickfirst.Name, roundrobin.Name, "pick_first", "round_robin"} {
		for _, o := range []e2e.Options{{}, {NoDialer: true}} {
			grpcs := policy == "pick_first" || policy == "round_robin"
			if grpcs && !o.NoDialer {
				continue // grpc's own policies, for comparison, as shipped
			}
			name := policy
			if o.NoDialer {
				name += "/nodialer"
			}
			t.Run(name, func(t *testing.T) {
				cl := e2e.Dial(t, e2e.ServiceConfig(policy, ""), e2e.AddrState(addrs...), o)
				tc := testgrpc.NewTestServiceClient(cl.CC)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				wait := grpc.WaitForReady(true)
				interop.DoEmptyUnaryCall(ctx, tc, wait)
				interop.DoLargeUnaryCall(ctx, tc, wait)
				interop.DoClientStreaming(ctx, tc, wait)
				interop.DoServerStreaming(ctx, tc, wait)
				interop.DoPingPong(ctx, tc, wait)
				interop.DoEmptyStream(ctx, tc, wait)
				interop.DoTimeoutOnSleepingServer(ctx, tc, wait)
				cancelAfterBegin(t, ctx, tc, wait)
				interop.DoCancelAfterFirstResponse(ctx, tc, wait)
				interop.DoCustomMetadata(ctx, tc, wait)
				interop.DoStatusCodeAndMessage(ctx, tc, wait)
				interop.DoSpecialStatusMessage(ctx, tc, wait)
				interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(cl.CC))
				interop.DoUnimplementedMethod(ctx, cl.CC)
				if policy == pickfirst.Name || policy == "pick_first" {
					interop.DoPickFirstUnary(ctx, tc)
				} else {
					assertSpread(t, tc, addrs)
				}
				cl.CC.Close()
				cl.Trace.CheckClean(t)
			})
		}
	}
}

// assertSpread checks that round_robin spreads unary calls over every
// backend.
func assertSpread(t *testing.T, tc testgrpc.TestServiceClient, addrs []string) {
	t.Helper()
	seen := map[string]int{}
	for range 60 {
		resp, err := tc.UnaryCall(context.Background(), &testpb.SimpleRequest{FillServerId: true}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		seen[resp.GetServerId()]++
	}
	for _, a := range addrs {
		if seen[a] == 0 {
			t.Fatalf("round_robin never reached %s: %v", a, seen)
		}
	}
}

// cancelAfterBegin is interop.DoCancelAfterBegin without its race: that case
// cancels the call and then calls CloseAndRecv, whose half-close can still
// reach the server before the client's cancellation takes effect (grpc acts
// on a cancelled context asynchronously). A loopback server then answers the
// empty stream with OK at once, and grpc's transport returns the buffered
// response ahead of the context error (recvBufferReader.readClient), so the
// case sees code OK, on any policy. Without the half-close the server never
// has a reason to answer, and only the cancellation can end the call.
func cancelAfterBegin(t *testing.T, ctx context.Context, tc testgrpc.TestServiceClient, opts ...grpc.CallOption) {
	t.Helper()
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, metadata.Pairs("key1", "value1")))
	stream, err := tc.StreamingInputCall(ctx, opts...)
	if err != nil {
		t.Fatalf("StreamingInputCall: %v", err)
	}
	cancel()
	if err := stream.RecvMsg(new(testpb.StreamingInputCallResponse)); status.Code(err) != codes.Canceled {
		t.Fatalf("StreamingInputCall cancelled after begin: RecvMsg = %v, want code %v", err, codes.Canceled)
	}
}
