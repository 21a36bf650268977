package guard_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/leaktest"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/balancer/leastrequest" // registers least_request_experimental
	_ "google.golang.org/grpc/balancer/ringhash"     // registers ring_hash_experimental
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// Timeouts of the guarded channels in these tests: short, so that an orphan
// is reclaimed and drained within a second.
const (
	orphanTimeout = 300 * time.Millisecond
	drainTimeout  = 300 * time.Millisecond
	// removalBound is how long sockets to a removed backend may stay open
	// under the guard: the orphan timeout, the drain bound, and slack for a
	// loaded machine.
	removalBound = orphanTimeout + drainTimeout + 2*time.Second
)

// guarded returns a service config running child (a JSON object such as
// {"round_robin":{}}) under the guard with the tests' timeouts and extra
// fields (`,"orphans":"report"`).
func guarded(child, extra string) string {
	return e2e.ServiceConfig(guard.Name, fmt.Sprintf(`{"childPolicy":[%s],"orphanTimeout":%q,"drainTimeout":%q%s}`,
		child, orphanTimeout.String(), drainTimeout.String(), extra))
}

// grpcPolicies are grpc-go's policies run under the guard, with the config
// each needs without xDS.
var grpcPolicies = []struct{ name, child string }{
	{"round_robin", `{"round_robin":{}}`},
	{"weighted_round_robin", `{"weighted_round_robin":{"blackoutPeriod":"0s","weightUpdatePeriod":"0.1s"}}`},
	{"least_request_experimental", `{"least_request_experimental":{}}`},
	{"ring_hash_experimental", `{"ring_hash_experimental":{"requestHashHeader":"x-ring-hash"}}`},
}

// TestGRPCPoliciesUnderTheGuard runs grpc-go's interop client cases through
// each of grpc's policies under the guard, checks that every backend serves,
// and that the refcount trace is clean after the channel closes.
func TestGRPCPoliciesUnderTheGuard(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	addrs := []string{e2e.StartInterop(t), e2e.StartInterop(t), e2e.StartInterop(t)}
	for _, p := range grpcPolicies {
		t.Run(p.name, func(t *testing.T) {
			cl := e2e.Dial(t, guarded(p.child, ""), e2e.AddrState(addrs...), e2e.Options{})
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
			interop.DoCancelAfterBegin(ctx, tc, wait)
			interop.DoCancelAfterFirstResponse(ctx, tc, wait)
			interop.DoCustomMetadata(ctx, tc, wait)
			interop.DoStatusCodeAndMessage(ctx, tc, wait)
			interop.DoSpecialStatusMessage(ctx, tc, wait)
			interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(cl.CC))
			interop.DoUnimplementedMethod(ctx, cl.CC)
			seen := map[string]int{}
			for range 90 {
				resp, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{FillServerId: true}, wait)
				if err != nil {
					t.Fatal(err)
				}
				seen[resp.GetServerId()]++
			}
			for _, a := range addrs {
				if seen[a] == 0 {
					t.Errorf("%s under the guard never reached %s: %v", p.name, a, seen)
				}
			}
			if n := len(cl.Trace.Events()); n == 0 {
				t.Fatal("no refcount trace: the child's subchannels did not go through the manager")
			}
			cl.CC.Close()
			cl.Trace.CheckClean(t)
		})
	}
}

// TestOneSocketPerBackendOnOverlappingEndpoints gives each of grpc's
// policies endpoints {A}, {A,B}, {B,C}: grpc's endpointsharding opens one
// connection per endpoint (two to A, two to B); under the guard every child
// shares the manager's one subchannel per backend.
func TestOneSocketPerBackendOnOverlappingEndpoints(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	state := e2e.EndpointState([]string{a}, []string{a, b}, []string{b, c})
	for _, p := range grpcPolicies {
		t.Run(p.name, func(t *testing.T) {
			cl := e2e.Dial(t, guarded(p.child, ""), state, e2e.Options{})
			cl.WaitServed(a, b)
			max := e2e.MaxSockets(t, 300*time.Millisecond, a, b, c)
			if max[a] != 1 || max[b] != 1 || max[c] > 1 {
				t.Errorf("%s under the guard: sockets %v, want at most 1 per backend", p.name, max)
			}
			cl.CC.Close()
			for _, addr := range []string{a, b, c} {
				e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
			}
			cl.Trace.CheckClean(t)
		})
	}
	// The same endpoints without the guard: the check above can fail.
	bare := e2e.Dial(t, e2e.ServiceConfig("round_robin", ""), state, e2e.Options{NoDialer: true})
	bare.WaitServed(a, b)
	if max := e2e.MaxSockets(t, 300*time.Millisecond, a, b, c); max[a] != 2 {
		t.Errorf("grpc's round_robin alone: sockets %v, want 2 to A (one per endpoint)", max)
	}
	bare.CC.Close()
}

// recordingT is a leaktest.TestingT that keeps what it is told.
type recordingT struct{ errs []string }

func (r *recordingT) Helper() {}
func (r *recordingT) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// kindsFor returns the lifecycle event kinds of key, in order.
func kindsFor(events []trace.Event, key string) []trace.Kind {
	var out []trace.Kind
	for _, e := range events {
		if e.Key == key && e.Kind != trace.KindState && e.Kind != trace.KindConnect &&
			e.Kind != trace.KindSocketOpen && e.Kind != trace.KindSocketClose {
			out = append(out, e.Kind)
		}
	}
	return out
}

// TestLeakyPolicyAloneAndUnderTheGuard runs the policy that forgets the
// SubConns of removed addresses, alone and under the guard, through the same
// steps: three backends, then C removed while the channel stays open. Alone,
// C keeps its socket and leaktest names it; guarded, the orphan is reclaimed
// and C's sockets reach 0 within orphanTimeout plus the drain bound, with
// orphan, shutdown and destroy in the trace.
func TestLeakyPolicyAloneAndUnderTheGuard(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()

	t.Run("alone", func(t *testing.T) {
		base, err := leaktest.Take()
		if err != nil {
			t.Fatal(err)
		}
		cl := e2e.Dial(t, e2e.ServiceConfig(leakzoo.ForgetRemoved, ""), e2e.AddrState(a, b, c), e2e.Options{})
		cl.WaitServed(a, b, c)
		cl.R.UpdateState(e2e.AddrState(a, b))
		rec := &recordingT{}
		leaktest.VerifyNone(rec, base, leaktest.Backends(c), leaktest.Deadline(removalBound))
		if cl.CC.GetState() == connectivity.Shutdown {
			t.Fatal("the channel closed")
		}
		want := fmt.Sprintf("socket(s) to backend %s after", c)
		if !slices.ContainsFunc(rec.errs, func(s string) bool { return strings.Contains(s, want) }) {
			t.Fatalf("leaktest did not name backend C (%s) kept open by the leaky policy: %q", c, rec.errs)
		}
	})
	t.Run("guarded", func(t *testing.T) {
		cl := e2e.Dial(t, guarded(fmt.Sprintf(`{%q:{}}`, leakzoo.ForgetRemoved), ""), e2e.AddrState(a, b, c), e2e.Options{})
		cl.WaitServed(a, b, c)
		removed := time.Now()
		cl.R.UpdateState(e2e.AddrState(a, b))
		e2e.WaitSockets(t, c, 0, removalBound)
		t.Logf("sockets to the removed backend reached 0 %v after the removal", time.Since(removed).Round(time.Millisecond))
		if cl.CC.GetState() == connectivity.Shutdown {
			t.Fatal("the channel closed")
		}
		cl.WaitServed(a, b) // and it still works
		ev := cl.Trace.WaitFor(t, "destroy of C", func(ev []trace.Event) bool {
			return slices.Contains(kindsFor(ev, c), trace.KindDestroy)
		})
		got := kindsFor(ev, c)
		want := []trace.Kind{trace.KindCreate, trace.KindRef, trace.KindOrphan, trace.KindUnref, trace.KindShutdown, trace.KindDestroy}
		if !slices.Equal(got, want) {
			t.Fatalf("trace of C: %v, want %v\n%s", got, want, e2e.Format(ev))
		}
		rep := trace.Check(ev)
		if len(rep.Orphans) != 1 || rep.Orphans[0].Key != c || !strings.Contains(rep.Orphans[0].Message, `holder "`+leakzoo.ForgetRemoved+`"`) {
			t.Fatalf("trace.Check orphans = %v, want one naming %s and the leaky holder", rep.Orphans, c)
		}
		for _, addr := range []string{a, b} {
			if n := e2e.Sockets(t, addr); n != 1 {
				t.Errorf("%d sockets to %s, want 1", n, addr)
			}
		}
		// The admin service's live leak check names it too.
		var named bool
		for _, p := range adminCheck(t, cl.Target).GetProblems() {
			named = named || (p.GetKind() == string(trace.ProblemOrphan) && p.GetKey() == c)
		}
		if !named {
			t.Errorf("the admin leak check does not name the orphan %s", c)
		}
		cl.CC.Close()
		cl.Trace.CheckClean(t)
	})
}

// adminCheck runs the admin service's leak check on target, through a real
// server on 127.0.0.1.
func adminCheck(t *testing.T, target string) *adminv1.CheckLeaksResponse {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	admin.Register(s)
	go s.Serve(l)
	defer s.Stop()
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	resp, err := adminv1.NewAdminServiceClient(cc).CheckLeaks(ctx, &adminv1.CheckLeaksRequest{Target: target})
	if err != nil {
		t.Fatalf("CheckLeaks: %v", err)
	}
	return resp
}

// TestReportLeavesTheOrphanOpen shows the difference "orphans":"report"
// makes: the orphan is recorded, but its socket stays open, until the
// channel closes.
func TestReportLeavesTheOrphanOpen(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, c := bs[0].Addr(), bs[1].Addr()
	for _, mode := range []string{"report", "reclaim"} {
		t.Run(mode, func(t *testing.T) {
			cl := e2e.Dial(t, guarded(fmt.Sprintf(`{%q:{}}`, leakzoo.ForgetRemoved), fmt.Sprintf(`,"orphans":%q`, mode)), e2e.AddrState(a, c), e2e.Options{})
			cl.WaitServed(a, c)
			cl.R.UpdateState(e2e.AddrState(a))
			cl.Trace.WaitFor(t, "the orphan event", func(ev []trace.Event) bool {
				return slices.Contains(kindsFor(ev, c), trace.KindOrphan)
			})
			if mode == "reclaim" {
				e2e.WaitSockets(t, c, 0, removalBound)
				return
			}
			if max := e2e.MaxSockets(t, removalBound, c); max[c] != 1 {
				t.Fatalf("report: sockets to the orphan's backend %v, want 1 kept open", max)
			}
			if got := kindsFor(cl.Trace.Events(), c); slices.Contains(got, trace.KindShutdown) || slices.Contains(got, trace.KindUnref) {
				t.Fatalf("report: the manager released the orphan: %v", got)
			}
			cl.CC.Close()
			e2e.WaitSockets(t, c, 0, e2e.LongTimeout)
		})
	}
}
