// Copy this file next to your client and adapt newClient and policy: it
// fails when your client leaves a goroutine, a file descriptor or a socket
// behind, and when the policy it uses leaks under faults.
package main

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/soak"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
)

// TestMain fails the package if any test leaves goroutines or descriptors
// behind, even one that forgot its own leaktest.Check.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// TestClientReleasesEverything runs the client against a real backend on
// 127.0.0.1 through a connection reset, and checks that once it is closed
// every goroutine, descriptor and socket to the backend is gone.
func TestClientReleasesEverything(t *testing.T) {
	b, err := testbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	// Registered after b.Close, so it runs first: the backend is still up
	// and only the client's sockets to it are counted.
	t.Cleanup(leaktest.Check(t, leaktest.Backends(b.Addr())))

	cc, err := newClient("passthrough:///" + b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	echo := echov1.NewEchoServiceClient(cc)
	call := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	call()
	if n, err := leaktest.SocketsTo(b.Addr()); err != nil || n != 1 {
		t.Fatalf("%d sockets to the backend while the client is open, want 1 (%v)", n, err)
	}
	b.ResetConns() // the client reconnects; the RPC is retried if it raced the reset
	call()
}

// TestSoak runs a short soak of the client: its service config and dial
// options on real backends on 127.0.0.1, its own RPC as the load, and
// faults (GOAWAY storm, overlapping endpoints, TCP resets). It fails naming what leaked: a removed backend's sockets still
// open, goroutines or descriptors above the baseline, a refcount trace that
// does not check clean. The soak reads the whole process: keep it out of
// parallel tests. CI's longer soak is `leakproof soak` in the workflow.
func TestSoak(t *testing.T) {
	// call is the client's own RPC; with your own service, register it
	// on the soak's backends with soak.Config.RegisterServices.
	call := func(ctx context.Context, cc *grpc.ClientConn) error {
		_, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "soak"})
		return err
	}
	res := soak.Verify(t, soak.Config{
		ServiceConfig: serviceConfig,
		DialOptions:   dialOptions(),
		Load:          call,
		Duration:      4 * time.Second,
		Faults:        []soak.Fault{soak.FaultGoAway, soak.FaultOverlap, soak.FaultReset},
	})
	if res != nil {
		t.Logf("%s; %d RPCs, %d retried", res.Verdict(), res.RPCs.OK+res.RPCs.Failed, res.RPCs.Retries)
	}
}
