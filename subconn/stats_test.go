package subconn

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/connectivity"
)

// TestStatsCountEachEventOnce: every counter in Stats, after a known
// sequence: two holders of one subchannel with a socket, released; a second
// subchannel left held at Close; a third whose NewSubConn fails.
func TestStatsCountEachEventOnce(t *testing.T) {
	target := holdingListener(t)
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	a, err := m.Acquire(addr(target), "a", WithAutoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Acquire(addr(target), "b")
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.rec.dial(context.Background(), target, defaultDial)
	if err != nil {
		t.Fatal(err)
	}
	cc.sc(0).push(connectivity.Ready)
	c.Close()
	cc.sc(0).push(connectivity.Idle) // a loss (the client closed the socket), and a's auto-reconnect
	a.Release("done")
	b.Release("done")
	if _, err := m.Acquire(addr("10.0.0.2:1"), "kept"); err != nil {
		t.Fatal(err)
	}
	cc.mu.Lock()
	cc.newErr["10.0.0.3:1"] = errors.New("refused")
	cc.mu.Unlock()
	if _, err := m.Acquire(addr("10.0.0.3:1"), "refused"); err == nil {
		t.Fatal("Acquire succeeded although NewSubConn failed")
	}
	if err := m.Close(); err == nil {
		t.Fatal("Close with a holder left returned nil")
	}
	got := m.Stats()
	want := trace.Stats{Created: 2, Shutdowns: 2, Destroyed: 2, Refs: 3, Unrefs: 3, Leaks: 1, SocketsOpened: 1, SocketsClosed: 1,
		ConnectionsLost: map[trace.Cause]uint64{trace.CauseLocal: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Stats() = %+v\nwant      %+v", got, want)
	}
	if n := cc.sc(0).connects.Load(); n != 1 {
		t.Fatalf("%d Connects on the subchannel, want 1 (the auto-reconnect)", n)
	}
	// Stats returns a copy.
	got.ConnectionsLost[trace.CauseLocal] = 99
	if m.Stats().ConnectionsLost[trace.CauseLocal] != 1 {
		t.Fatal("Stats() shares its ConnectionsLost map with the manager")
	}
}
