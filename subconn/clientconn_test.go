package subconn

import (
	"strings"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// TestChildClientConnTakesOneAddressAndUnwrapsPickers: the child
// ClientConn's NewSubConn wants exactly one address, and the pickers it
// passes up return grpc's own SubConns.
func TestChildClientConnTakesOneAddressAndUnwrapsPickers(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	child := m.ClientConn(cc, "child")
	if _, err := child.NewSubConn([]resolver.Address{addr("10.0.0.1:1"), addr("10.0.0.2:1")}, balancer.NewSubConnOptions{}); err == nil || !strings.Contains(err.Error(), `"child" needs exactly one address, got 2`) {
		t.Fatalf("NewSubConn with two addresses: %v", err)
	}
	if _, err := child.NewSubConn(nil, balancer.NewSubConnOptions{}); err == nil {
		t.Fatal("NewSubConn with no address succeeded")
	}
	sc, err := child.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Shutdown()

	child.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: pickOnly{sc}})
	cc.mu.Lock()
	got := cc.states[len(cc.states)-1]
	cc.mu.Unlock()
	res, err := got.Picker.Pick(balancer.PickInfo{})
	if err != nil || res.SubConn != balancer.SubConn(cc.sc(0)) {
		t.Fatalf("the parent's picker picked %v, %v; want grpc's SubConn", res.SubConn, err)
	}
	if p := unwrapPickerOf(got.Picker); p != got.Picker {
		t.Fatal("unwrapPickerOf wrapped an unwrapping picker again")
	}
	if unwrapPickerOf(nil) != nil {
		t.Fatal("unwrapPickerOf(nil) is not nil")
	}
}

type pickOnly struct{ sc balancer.SubConn }

func (p pickOnly) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.sc}, nil
}
