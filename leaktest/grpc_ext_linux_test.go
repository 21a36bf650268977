package leaktest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// grpcTimeout bounds waiting for a real channel to connect.
const grpcTimeout = 5 * time.Second

// serveGRPC starts a gRPC server on a loopback listener for the life of the
// test and returns its address.
func serveGRPC(t *testing.T) string {
	t.Helper()
	lis := listen(t)
	srv := grpc.NewServer()
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dialReady opens a channel to addr and waits until it is READY.
func dialReady(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), grpcTimeout)
	defer cancel()
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			cc.Close()
			t.Fatalf("channel to %s not READY after %v: %v", addr, grpcTimeout, s)
		}
	}
	return cc
}

func TestCheckCatchesOpenClientConn(t *testing.T) {
	addr := serveGRPC(t)
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends(addr))
	cc := dialReady(t, addr)
	defer cc.Close()
	verify()

	errs := strings.Join(rt.errors(), "\n")
	for _, want := range []string{
		"file descriptor(s) leaked",
		"-> " + addr + " ESTABLISHED",
		"1 socket(s) to backend " + addr,
		"goroutines leaked",
		"google.golang.org/grpc/internal/transport.",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("report does not mention %q:\n%s", want, errs)
		}
	}
}

// A closed channel's server side notices the EOF only after Close returns:
// the check passes because it polls.
func TestCheckPassesAfterClientConnClose(t *testing.T) {
	addr := serveGRPC(t)
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(passDeadline), leaktest.Backends(addr))
	cc := dialReady(t, addr)
	if n, err := leaktest.SocketsTo(addr); err != nil || n != 1 {
		t.Errorf("SocketsTo(%s) = %d, %v with the channel READY; want 1", addr, n, err)
	}
	cc.Close()
	verify()
	rt.wantNoError(t)
}

// TestFindListsOnlyChannelsOpenedSinceTheBaseline: a channel open at the
// baseline and still open is the test binary's, not one the test forgot to
// close; Find names only the channel opened since.
func TestFindListsOnlyChannelsOpenedSinceTheBaseline(t *testing.T) {
	kept := dialReady(t, serveGRPC(t))
	defer kept.Close()
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	addr := serveGRPC(t)
	cc := dialReady(t, addr)
	defer cc.Close()

	l := leaktest.Find(base, leaktest.Deadline(failDeadline))
	if l == nil {
		t.Fatal("Find = nil with a channel opened since the baseline")
	}
	var targets []string
	for _, c := range l.Channels {
		targets = append(targets, c.Target)
	}
	if want := "passthrough:///" + addr; len(targets) != 1 || targets[0] != want {
		t.Errorf("channels %q, want only %q", targets, want)
	}
}
