package replacetest

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestXDSTreesWithReplacedPolicies: with pick_first and round_robin
// replaced, grpc's own xDS trees run leakproof's policies as their leaves,
// under cluster_impl and outlier detection, where a manager stamps its
// owner token into the address it gives NewSubConn.
//
//   - grpc's default (xds_wrr_locality over round_robin): the leaf is
//     leakproof_round_robin; its sockets are owned (socket_open in the
//     trace).
//   - weighted_round_robin by TypedStruct: its pick_first children are
//     leakproof_pick_first, and weighted_round_robin looks each address up
//     in a resolver.AddressMap, which compares attributes. It refuses the
//     stamped address; the manager gives it the address as it came, so every
//     backend is served, but outlier detection's wrapper is what comes back,
//     so these sockets are dialed untracked: no socket_open. This is the
//     tree the limit in the README is about.
func TestXDSTreesWithReplacedPolicies(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 4)
	addrs := e2e.Addrs(bs)
	srv, err := xdsplane.Start(xdsplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	type tree struct {
		target string
		policy xdsplane.Policy
		addrs  []string
		owned  bool
	}
	trees := []tree{
		{target: "replaced-default", addrs: addrs[:2], owned: true},
		{target: "replaced-wrr", policy: xdsplane.Policy{Name: "weighted_round_robin"}, addrs: addrs[2:], owned: false},
	}
	var sets []xdsplane.Resources
	for _, tr := range trees {
		res, err := xdsplane.Service(tr.target, "c-"+tr.target, xdsplane.ClusterSpec{Name: "c-" + tr.target, Policy: tr.policy,
			Localities: []xdsplane.Locality{{Name: "z1", Endpoints: tr.addrs}}})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	if _, err := srv.Update(ctx, xdsplane.Merge(sets...)); err != nil {
		t.Fatal(err)
	}
	r, err := srv.Resolver()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trees {
		target := "xds:///" + tr.target
		rec := e2e.Record(target)
		cc, err := grpc.NewClient(target, grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(subconn.Dialer(nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close(); rec.Close() })
		waitServed(t, echov1.NewEchoServiceClient(cc), tr.addrs...)
		if !managed(target) {
			t.Errorf("%s: no leakproof manager serves the channel", tr.target)
		}
		opened := rec.Count(trace.KindSocketOpen, "")
		if tr.owned != (opened > 0) {
			t.Errorf("%s: %d socket_open events, want owned sockets: %v", tr.target, opened, tr.owned)
		}
		t.Logf("%s: every backend served, %d socket_open events, %d sockets on /proc", tr.target, opened, e2e.Sockets(t, tr.addrs[0])+e2e.Sockets(t, tr.addrs[1]))
		cc.Close()
		for _, a := range tr.addrs {
			e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
		}
		rec.CheckClean(t)
	}
}

// waitServed makes RPCs until every backend in want served one.
func waitServed(t *testing.T, echo echov1.EchoServiceClient, want ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, a := range want {
		left[a] = true
	}
	deadline := time.Now().Add(e2e.LongTimeout)
	var lastErr error
	for len(left) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("backends %v never served an RPC (last error: %v)", left, lastErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
		resp, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			lastErr = err
			time.Sleep(5 * time.Millisecond)
			continue
		}
		delete(left, resp.GetBackend().GetAddress())
	}
}
