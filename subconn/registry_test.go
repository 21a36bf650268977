package subconn

import (
	"cmp"
	"fmt"
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

// SnapshotPage describes only the subchannels it returns: a page of 10 out
// of 2,000 allocates for those 10, not for the 2,000, and pages walk every
// subchannel once, in id order.
func TestSnapshotPageCopiesOnlyItsPage(t *testing.T) {
	m := NewManager(newFakeCC(), WithTraceRing(0))
	defer m.Close()
	const n = 2000
	for i := range n {
		if _, err := m.Acquire(addr(fmt.Sprintf("10.0.%d.%d:1", i/250, i%250+1)), "h"); err != nil {
			t.Fatal(err)
		}
	}
	all := m.Snapshot()
	if len(all) != n {
		t.Fatalf("Snapshot lists %d subchannels, want %d", len(all), n)
	}
	full := testing.AllocsPerRun(5, func() { m.SnapshotPage(0, -1) })
	page := testing.AllocsPerRun(5, func() { m.SnapshotPage(all[n/2].ID, 10) })
	// Each described subchannel allocates its holders and sockets.
	if page > 40 || full < n {
		t.Fatalf("a page of 10 allocates %v times, all %d %v: want the page's cost independent of the rest", page, n, full)
	}
	var ids []uint64
	for after := uint64(0); ; {
		p := m.SnapshotPage(after, 300)
		if len(p) == 0 {
			break
		}
		for _, si := range p {
			ids = append(ids, si.ID)
		}
		after = p[len(p)-1].ID
	}
	if len(ids) != n {
		t.Fatalf("pages of 300 gave %d subchannels, want %d", len(ids), n)
	}
	for i, si := range all {
		if ids[i] != si.ID {
			t.Fatalf("page order differs from Snapshot's at %d: %d, want %d", i, ids[i], si.ID)
		}
	}
}
