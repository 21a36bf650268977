package sockowner

import (
	"net"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRegisterLookupNormalises(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 40000}
	remote := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 50051}
	o := Owner{Manager: 1, Subchannel: 7, Key: "127.0.0.1:50051"}
	unregister := Register(local, remote, o)

	got, ok := Lookup(netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("[::ffff:127.0.0.1]:50051"))
	if !ok || got != o {
		t.Fatalf("Lookup = %+v, %v; want %+v, true", got, ok, o)
	}
	unregister()
	unregister() // a second call is a no-op
	if _, ok := Lookup(netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.1:50051")); ok {
		t.Fatal("Lookup found an owner after unregister")
	}
	if n := Len(); n != 0 {
		t.Fatalf("Len = %d after unregister, want 0", n)
	}
}

func TestRegisterIgnoresNonIPAddrs(t *testing.T) {
	unregister := Register(&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, &net.UnixAddr{Name: "/tmp/y", Net: "unix"}, Owner{Subchannel: 1})
	defer unregister()
	if n := Len(); n != 0 {
		t.Fatalf("Len = %d, want 0 for unix sockets", n)
	}
}
