package xdse2e_test

import (
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
)

// TestPoliciesChosenByTypedStruct: one control plane selects a policy per
// cluster through Cluster.load_balancing_policy (a TypedStruct with the
// policy's JSON config): leakproof_round_robin, leakproof_pick_first, and
// grpc's own xDS round robin (no load_balancing_policy) side by side, on the
// same three backends. The trace proves leakproof's policies are the ones
// running; the socket counts are measured for all three.
func TestPoliciesChosenByTypedStruct(t *testing.T) {
	t.Cleanup(leaktest.Check(t)) // registered first: runs after every channel and server closed
	bs := e2e.StartBackends(t, 3)
	addrs := e2e.Addrs(bs)
	srv := startServer(t)

	rr, pf, grpcRR := name("rr"), name("pf"), name("grpc-rr")
	v := publish(t, srv, xdsplane.Merge(
		service(t, rr, xdsplane.ClusterSpec{Name: "c-" + rr, Policy: xdsplane.Policy{Name: roundrobin.Name, Config: `{"drainTimeout":"2s","traceRingSize":64}`}, Localities: one(addrs...)}),
		service(t, pf, xdsplane.ClusterSpec{Name: "c-" + pf, Policy: xdsplane.Policy{Name: pickfirst.Name, Config: `{"shuffleAddressList":false}`}, Localities: one(addrs...)}),
		service(t, grpcRR, xdsplane.ClusterSpec{Name: "c-" + grpcRR, Localities: one(addrs...)}),
	))

	ours := dial(t, srv, rr, false)
	first := dial(t, srv, pf, false)
	theirs := dial(t, srv, grpcRR, true)
	ours.waitServed(addrs...)
	theirs.waitServed(addrs...)
	first.waitServed(addrs[0])
	waitAcked(t, srv, xdsplane.EndpointType, v)

	// leakproof's policies are running: their managers created exactly one
	// subchannel per backend for this channel (pick_first: the first one).
	if got := ours.created(); len(got) != 3 || got[addrs[0]] != 1 || got[addrs[1]] != 1 || got[addrs[2]] != 1 {
		t.Errorf("%s: subchannels created per backend %v, want one to each of %v", roundrobin.Name, got, addrs)
	}
	if got := first.created(); len(got) != 1 || got[addrs[0]] != 1 {
		t.Errorf("%s: subchannels created per backend %v, want one to %s", pickfirst.Name, got, addrs[0])
	}
	if got := theirs.created(); len(got) != 0 {
		t.Errorf("grpc's round robin created leakproof subchannels %v: the cluster's policy is not grpc's", got)
	}
	// Every RPC of pick_first lands on the first backend; round robin
	// spreads them.
	if got, errs := first.served(30); len(errs) != 0 || got[addrs[0]] != 30 {
		t.Errorf("%s: served %v (errors %v), want all 30 on %s", pickfirst.Name, got, errs, addrs[0])
	}
	if got, errs := ours.served(30); len(errs) != 0 || len(got) != 3 {
		t.Errorf("%s: served %v (errors %v), want all three backends", roundrobin.Name, got, errs)
	}

	// Three channels on three backends: round robin holds one socket to
	// each, pick_first one to the first; so each backend sees 2 sockets
	// from leakproof's and grpc's round robin, plus 1 from pick_first on
	// the first.
	max := maxSockets(t, 200*time.Millisecond, addrs...)
	want := map[string]int{addrs[0]: 3, addrs[1]: 2, addrs[2]: 2}
	for _, a := range addrs {
		if max[a] != want[a] {
			t.Errorf("sockets to %s: max %d, want %d (1 per channel that uses it)", a, max[a], want[a])
		}
	}

	for _, c := range []*client{ours, first, theirs} {
		c.CC.Close()
	}
	for _, a := range addrs {
		e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	}
	ours.Trace.CheckClean(t)
	first.Trace.CheckClean(t)
}
