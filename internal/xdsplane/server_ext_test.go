package xdsplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func start(t *testing.T) *xdsplane.Server {
	t.Helper()
	srv, err := xdsplane.Start(xdsplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func dial(t *testing.T, srv *xdsplane.Server, target string) echov1.EchoServiceClient {
	t.Helper()
	r, err := srv.Resolver()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("xds:///"+target, grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return echov1.NewEchoServiceClient(cc)
}

func echo(t *testing.T, c echov1.EchoServiceClient) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	resp, err := c.Echo(ctx, &echov1.EchoRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("RPC through the control plane's resources: %v", err)
	}
	return resp.GetBackend().GetAddress()
}

func service(t *testing.T, target string, p xdsplane.Policy, addrs ...string) xdsplane.Resources {
	t.Helper()
	res, err := xdsplane.Service(target, "c1", xdsplane.ClusterSpec{Name: "c1", Policy: p, Localities: []xdsplane.Locality{{Name: "z", Endpoints: addrs}}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestServesAClient: a real gRPC client on xds:/// follows the server's
// Listener → RouteConfiguration → Cluster → ClusterLoadAssignment to a real
// backend, and ACKs every type; an EDS-only change gets a new version for
// the endpoints alone.
func TestServesAClient(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	srv := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	v1, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, "svc")
	if got := echo(t, c); got != bs[0].Addr() {
		t.Fatalf("served by %s, want %s", got, bs[0].Addr())
	}
	for _, typ := range []string{xdsplane.ListenerType, xdsplane.RouteType, xdsplane.ClusterType, xdsplane.EndpointType} {
		if err := srv.WaitAcked(ctx, typ, v1); err != nil {
			t.Fatal(err)
		}
	}
	v2, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[1].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitAcked(ctx, xdsplane.EndpointType, v2); err != nil {
		t.Fatal(err)
	}
	if got := srv.Acked(xdsplane.ClusterType); got != v1 {
		t.Errorf("Cluster version %s after an EDS-only change, want %s (unchanged)", got, v1)
	}
	for echo(t, c) != bs[1].Addr() {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(srv.NACKs()); n != 0 {
		t.Errorf("%d NACKs of valid resources: %v", n, srv.NACKs())
	}
}

// TestNACKRollsBack: a Cluster whose TypedStruct config the policy rejects
// is NACKed once; the server rolls the Cluster type back to the version the
// client holds instead of resending the rejected one in a loop, and the
// client keeps working on the last good config.
func TestNACKRollsBack(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	srv := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	good, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, "svc")
	echo(t, c)
	if err := srv.WaitAcked(ctx, xdsplane.ClusterType, good); err != nil {
		t.Fatal(err)
	}
	bad, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name, Config: `{"drainTimeout":"forever"}`}, bs[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	nack, err := srv.WaitNACK(ctx, xdsplane.ClusterType, 0)
	if err != nil {
		t.Fatal(err)
	}
	if nack.Rejected != bad || nack.Held != good || !strings.Contains(nack.Message, "drainTimeout") {
		t.Errorf("NACK %+v, want version %s rejected, %s held, a message naming drainTimeout", nack, bad, good)
	}
	time.Sleep(300 * time.Millisecond) // a resend loop NACKs hundreds of times in this window
	if n := len(srv.NACKs()); n != 1 {
		t.Errorf("%d NACKs, want 1: the rejected version was sent again", n)
	}
	if got := srv.Acked(xdsplane.ClusterType); got != good {
		t.Errorf("client holds Cluster version %q, want %q", got, good)
	}
	echo(t, c)
}

// TestRestart: the server restarts on its port; the client reconnects and
// accepts a new version published after the restart.
func TestRestart(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	srv := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	if _, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[0].Addr())); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, "svc")
	echo(t, c)
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	echo(t, c) // the client keeps its resources while the server is away
	v, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[1].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitAcked(ctx, xdsplane.EndpointType, v); err != nil {
		t.Fatal(err)
	}
	for echo(t, c) != bs[1].Addr() {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBadInput: resources the server cannot publish are refused with an
// error, and a closed server says so.
func TestBadInput(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	if _, err := xdsplane.Cluster("c", "e", xdsplane.Policy{Name: "p", Config: `[1]`}); err == nil {
		t.Error("Cluster with a config that is not a JSON object: no error")
	}
	if _, err := xdsplane.ClusterLoadAssignment("e", xdsplane.Locality{Endpoints: []string{"127.0.0.1"}}); err == nil {
		t.Error("endpoint without a port: no error")
	}
	srv := start(t)
	ctx := context.Background()
	twice := service(t, "svc", xdsplane.Policy{}, "127.0.0.1:1")
	twice.Clusters = append(twice.Clusters, twice.Clusters[0])
	if _, err := srv.Update(ctx, twice); err == nil {
		t.Error("two Clusters with one name: no error")
	}
	srv.Close()
	if _, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{}, "127.0.0.1:1")); err != xdsplane.ErrClosed {
		t.Errorf("Update after Close: %v, want ErrClosed", err)
	}
	if err := srv.Restart(ctx); err != xdsplane.ErrClosed {
		t.Errorf("Restart after Close: %v, want ErrClosed", err)
	}
}

// TestHistoryIsBounded: a long run's pushes do not grow the server. After
// many EDS pushes the server keeps only what a NACK can roll back to (the
// versions the client holds, and the latest few), and a NACK then still
// rolls the Cluster back to the version the client accepted before the
// pushes began.
func TestHistoryIsBounded(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	srv := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	good, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	echo(t, dial(t, srv, "svc"))
	if err := srv.WaitAcked(ctx, xdsplane.ClusterType, good); err != nil {
		t.Fatal(err)
	}
	const pushes = 200
	for i := range pushes {
		v, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name}, bs[(i+1)%2].Addr()))
		if err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			if err := srv.WaitAcked(ctx, xdsplane.EndpointType, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Per type: the current version, the one the client holds, the one in
	// flight, and the latest KeptVersions.
	if n, limit := srv.HistoryLen(), 4*(xdsplane.KeptVersions+3); n > limit {
		t.Errorf("the server keeps %d versions after %d pushes, want at most %d", n, pushes, limit)
	}
	if !srv.InHistory(xdsplane.ClusterType, good) {
		t.Fatalf("the Cluster version %s the client holds was dropped", good)
	}
	bad, err := srv.Update(ctx, service(t, "svc", xdsplane.Policy{Name: roundrobin.Name, Config: `{"drainTimeout":"forever"}`}, bs[0].Addr()))
	if err != nil {
		t.Fatal(err)
	}
	nack, err := srv.WaitNACK(ctx, xdsplane.ClusterType, 0)
	if err != nil {
		t.Fatal(err)
	}
	if nack.Rejected != bad || nack.Held != good {
		t.Errorf("NACK %+v, want version %s rejected, %s held", nack, bad, good)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.NACKs()); n != 1 {
		t.Errorf("%d NACKs, want 1: the rejected version was sent again", n)
	}
}
