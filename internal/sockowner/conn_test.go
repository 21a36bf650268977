package sockowner

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// TestWrapReportsCloseOnceAndUnregisters dials a real loopback socket
// through the shared dialer core, records it in a Table of its own, and
// checks that two Closes report once and remove the entry.
func TestWrapReportsCloseOnceAndUnregisters(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	conn, err := Dial(context.Background(), "tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	var table Table[int]
	closes := 0
	unregister := table.Register(conn.LocalAddr(), conn.RemoteAddr(), 7)
	c := Wrap(conn, func() { closes++; unregister() })
	local, _ := AddrPort(conn.LocalAddr())
	remote := netip.MustParseAddrPort(lis.Addr().String())
	if v, ok := table.Lookup(local, remote); !ok || v != 7 {
		t.Fatalf("Lookup = %d, %v; want 7, true", v, ok)
	}
	if _, err := c.SyscallConn(); err != nil {
		t.Errorf("SyscallConn on a TCP socket: %v", err)
	}
	c.Close()
	c.Close()
	if closes != 1 {
		t.Errorf("onClose ran %d times for two Closes, want 1", closes)
	}
	if n := table.Len(); n != 0 {
		t.Errorf("Len = %d after Close, want 0", n)
	}
}
