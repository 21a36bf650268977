package subconn

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/connectivity"
)

// TestManagersAreListedByIDAndClosedIsTold: the registry lists managers in
// id order, and keeps a closed manager only while it has subchannels.
func TestManagersAreListedByIDAndClosedIsTold(t *testing.T) {
	var ms []*Manager
	for range 5 {
		ms = append(ms, NewManager(newFakeCC()))
	}
	listed := Managers()
	if !slices.IsSortedFunc(listed, func(a, b *Manager) int { return cmp.Compare(a.ID(), b.ID()) }) {
		t.Fatal("Managers() not in id order")
	}
	var ids []uint64
	for _, m := range listed {
		ids = append(ids, m.ID())
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Fatalf("Managers() ids %v not strictly increasing", ids)
		}
	}
	for _, m := range ms {
		if !slices.Contains(ids, m.ID()) {
			t.Fatalf("manager %d missing from Managers()", m.ID())
		}
	}

	m := ms[0]
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	if m.Closed() {
		t.Fatal("Closed() before Close")
	}
	for _, m := range ms {
		m.Close()
	}
	if !m.Closed() {
		t.Fatal("Closed() false after Close")
	}
	if h.Release("late") == nil {
		t.Fatal("release after Close succeeded")
	}
	for _, x := range Managers() {
		for _, m := range ms {
			if x == m {
				t.Fatalf("closed manager %d with nothing left still listed", m.ID())
			}
		}
	}
}

// TestSnapshotCountsConnectionLosses: a subchannel's snapshot counts its
// READY→IDLE transitions and names the last cause.
func TestSnapshotCountsConnectionLosses(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	defer m.Close()
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release("done")
	sc := cc.sc(0)
	for range 2 {
		sc.push(connectivity.Connecting)
		sc.push(connectivity.Ready)
		sc.push(connectivity.Idle)
	}
	s := m.Snapshot()
	if len(s) != 1 || s[0].ConnectionsLost != 2 || !strings.HasPrefix(s[0].LastLoss, string(trace.CauseUnknown)+": ") || s[0].State != "IDLE" {
		t.Fatalf("snapshot %+v, want 2 losses, the last one %s", s, trace.CauseUnknown)
	}
}
