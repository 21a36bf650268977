package subconn

import (
	"errors"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/weightedroundrobin"
	"google.golang.org/grpc/resolver"
)

// The backend service is read from the state exactly as cluster_impl sets
// it (with grpc's own setter), whatever its characters; a state without it
// has none.
func TestPlacementOfReadsClusterImplsAttribute(t *testing.T) {
	for _, cluster := range []string{"c-1", `we"ird\ "<%!p(x)>": "name"`, ""} {
		s := weightedroundrobin.SetBackendService(resolver.State{}, cluster)
		s.Attributes = s.Attributes.WithValue("other", "x")
		if got := PlacementOf(s); got != (Placement{BackendService: cluster}) {
			t.Errorf("PlacementOf(SetBackendService(%q)) = %+v", cluster, got)
		}
	}
	if got := PlacementOf(resolver.State{}); got != (Placement{}) {
		t.Errorf("PlacementOf(no attributes) = %+v, want none", got)
	}
}

// refusingCC fails NewSubConn for an address carrying attributes, as
// weighted_round_robin does for an address its resolver.AddressMap does not
// hold.
type refusingCC struct{ *fakeCC }

func (r refusingCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	if addrs[0].Attributes != nil {
		return nil, errors.New("wrr: balancer is being closed; no new SubConns allowed")
	}
	return r.fakeCC.NewSubConn(addrs, opts)
}

// Under a cluster the token is in the address given to NewSubConn and the
// metrics carry the placement; a parent that refuses the stamped address
// gets the address as it gave it; a second placement is ignored.
func TestPlacementStampsAndLabels(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("xds:///svc"))
	if _, err := m.Acquire(addr("10.0.0.1:1"), "before"); err != nil {
		t.Fatal(err)
	}
	m.SetPlacement(Placement{BackendService: "c1", Locality: "z1"})
	m.SetPlacement(Placement{BackendService: "c2"})
	if _, err := m.Acquire(addr("10.0.0.2:1"), "after"); err != nil {
		t.Fatal(err)
	}
	if r := recordOf(cc.sc(0).addr); r != nil {
		t.Errorf("without a placement NewSubConn got the token (the fake is not grpc's SubConn: no stamp at all)")
	}
	if r := recordOf(cc.sc(1).addr); r == nil || r.addr != "10.0.0.2:1" {
		t.Errorf("under a cluster NewSubConn got %v, want the address with its record's token", cc.sc(1).addr)
	}
	g := cc.metrics.withOptional
	if g[MetricSubchannelsOpen+" xds:///svc |  "] != 1 || g[MetricSubchannelsOpen+" xds:///svc | c1 z1"] != 1 {
		t.Errorf("open subchannels by labels = %v, want one without and one with {c1, z1}", g)
	}
	if err := m.Close(); err == nil {
		t.Error("Close with two holders: no error")
	}

	rcc := refusingCC{newFakeCC()}
	m = NewManager(rcc, WithTarget("xds:///svc"))
	m.SetPlacement(Placement{BackendService: "c1"})
	if _, err := m.Acquire(addr("10.0.0.3:1"), "under wrr"); err != nil {
		t.Fatalf("a parent refusing the stamped address: %v, want the unstamped one accepted", err)
	}
	if n := rcc.newSubConnCalls(); n != 1 || recordOf(rcc.sc(0).addr) != nil {
		t.Errorf("%d SubConns, address %v: want one, unstamped", n, rcc.sc(0).addr)
	}
	_ = m.Close()
}
