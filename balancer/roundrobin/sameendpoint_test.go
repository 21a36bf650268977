package roundrobin

import (
	"testing"

	"google.golang.org/grpc/resolver"
)

func TestSameEndpoint(t *testing.T) {
	ep := func(addrs ...resolver.Address) resolver.Endpoint { return resolver.Endpoint{Addresses: addrs} }
	a, b := resolver.Address{Addr: "a:1"}, resolver.Address{Addr: "b:1"}
	aTLS := resolver.Address{Addr: "a:1", ServerName: "a.example"}
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
	} {
		if got := sameEndpoint(tc.x, tc.y); got != tc.want {
			t.Errorf("%s: sameEndpoint = %v, want %v", tc.name, got, tc.want)
		}
	}
}
