package dnsserver_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/leakproof/leakproof/internal/dnsserver"
)

// A server answering two backends behind one name, asked by Go's resolver
// the way grpc-go's dns resolver asks it.
func Example() {
	s, err := dnsserver.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	_ = s.SetA("backends.example.test", netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"))

	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr())
	}}
	addrs, err := r.LookupHost(context.Background(), "backends.example.test.")
	fmt.Println(addrs, err)

	s.SetMode(dnsserver.ServFail)
	_, err = r.LookupHost(context.Background(), "backends.example.test.")
	fmt.Println(err != nil)
	// Output:
	// [127.0.0.2 127.0.0.3] <nil>
	// true
}
