package roundrobin

import (
	"testing"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

func TestSameEndpoint(t *testing.T) {
	ep := func(addrs ...resolver.Address) resolver.Endpoint { return resolver.Endpoint{Addresses: addrs} }
	a, b := resolver.Address{Addr: "a:1"}, resolver.Address{Addr: "b:1"}
	aTLS := resolver.Address{Addr: "a:1", ServerName: "a.example"}
	aAttr := resolver.Address{Addr: "a:1", Attributes: attributes.New("k", "v")}
	aBal := resolver.Address{Addr: "a:1", BalancerAttributes: attributes.New("k", "v")}
	withAttr := ep(a)
	withAttr.Attributes = attributes.New("k", "v")
	for _, tc := range []struct {
		name string
		x, y resolver.Endpoint
		want bool
	}{
		{"identical", ep(a, b), ep(a, b), true},
		{"another order", ep(a, b), ep(b, a), false},
		{"one address more", ep(a), ep(a, b), false},
		{"another address", ep(a), ep(b), false},
		{"another server name", ep(a), ep(aTLS), false},
		{"other address attributes", ep(a), ep(aAttr), false},
		{"other balancer attributes", ep(a), ep(aBal), false},
		{"other endpoint attributes", ep(a), withAttr, false},
		{"equal attributes", withAttr, withAttr, true},
	} {
		if got := sameEndpoint(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: sameEndpoint = %v, want %v", tc.name, got, tc.want)
		}
	}
}
