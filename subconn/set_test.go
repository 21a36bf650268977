package subconn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/resolver"
)

// TestSyncThatChangesNothingCostsNothing: Sync's cost is a lookup per
// address plus the changes; an unchanged list neither allocates nor sweeps.
func TestSyncThatChangesNothingCostsNothing(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	defer m.Close()
	s := m.NewSet("set", nil)
	defer s.Close()
	var addrs []resolver.Address
	for i := range 50 {
		addrs = append(addrs, addr(fmt.Sprintf("10.0.0.%d:1", i+1)))
	}
	if _, _, err := s.Sync(addrs); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if added, removed, err := s.Sync(addrs); len(added)+len(removed) != 0 || err != nil {
			t.Fatalf("unchanged Sync: added %d, removed %d, %v", len(added), len(removed), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per unchanged Sync, want 0", allocs)
	}
}

// TestSetReportsSubConnsReleasedBehindItsBack: a SubConn the set holds but
// someone else released is an error when the set lets it go, from Sync and
// from Close, and the other releases still happen.
func TestSetReportsSubConnsReleasedBehindItsBack(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	s := m.NewSet("set", nil)
	added, _, err := s.Sync([]resolver.Address{addr("10.0.0.1:1"), addr("10.0.0.2:1"), addr("10.0.0.3:1")})
	if err != nil || len(added) != 3 {
		t.Fatalf("Sync: %d added, %v", len(added), err)
	}
	byKey := map[string]*SubConn{}
	for _, h := range added {
		byKey[h.rec.key()] = h
	}
	byKey["10.0.0.1:1"].Release("by hand")
	if _, removed, err := s.Sync([]resolver.Address{addr("10.0.0.2:1"), addr("10.0.0.3:1")}); !errors.Is(err, ErrReleased) || len(removed) != 1 {
		t.Fatalf("Sync dropping a SubConn released by hand: removed %d, err %v; want 1 and ErrReleased", len(removed), err)
	}
	byKey["10.0.0.2:1"].Release("by hand")
	if err := s.Close(); !errors.Is(err, ErrReleased) || !strings.Contains(err.Error(), "10.0.0.2:1") {
		t.Fatalf("Close with a SubConn released by hand: %v, want ErrReleased naming it", err)
	}
	if !byKey["10.0.0.3:1"].Released() || len(m.Snapshot()) != 0 {
		t.Fatalf("Close left subchannels: %+v", m.Snapshot())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := s.Sync(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
}
