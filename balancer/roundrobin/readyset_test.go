package roundrobin

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/balancer"
)

type doneSubConn struct{ balancer.SubConn }

// donePicker is a READY child's picker whose result is not a plain SubConn:
// it wants to hear when the RPC ends.
type donePicker struct{ sc balancer.SubConn }

func (p donePicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.sc, Done: func(balancer.DoneInfo) {}}, nil
}

// TestReadyPickerOverEntriesThatAreNotASubConn: a READY endpoint whose
// picker does more than return a SubConn (a Done callback) is picked
// through its picker, and one with no picker at all, a child breaking the
// contract, makes the pick wait instead of handing grpc a nil SubConn. An
// empty READY set makes picks wait too.
func TestReadyPickerOverEntriesThatAreNotASubConn(t *testing.T) {
	var empty readySet
	if _, err := (&readyPicker{set: &empty, next: new(atomic.Uint32)}).Pick(balancer.PickInfo{}); !errors.Is(err, balancer.ErrNoSubConnAvailable) {
		t.Errorf("Pick on a READY set never filled: %v, want ErrNoSubConnAvailable", err)
	}

	sc := &doneSubConn{}
	var s readySet
	s.add(readyEntryOf(donePicker{sc: sc}))
	p := &readyPicker{set: &s, next: start(1)}
	res, err := p.Pick(balancer.PickInfo{})
	if err != nil || res.SubConn != balancer.SubConn(sc) || res.Done == nil {
		t.Fatalf("Pick through a picker with a Done callback = %+v, %v; want its SubConn and its Done", res, err)
	}

	s.remove(0)
	if _, err := p.Pick(balancer.PickInfo{}); !errors.Is(err, balancer.ErrNoSubConnAvailable) {
		t.Errorf("Pick on a READY set emptied: %v, want ErrNoSubConnAvailable", err)
	}

	s.add(readyEntryOf(nil))
	res, err = p.Pick(balancer.PickInfo{})
	if err == nil || res.SubConn != nil {
		t.Fatalf("Pick over a READY endpoint with no picker = %+v, %v; want ErrNoSubConnAvailable", res, err)
	}
}

// TestParseConfigUnderGRPCsName: under grpc's name (ReplaceGRPCPolicy) every
// config grpc's round_robin accepts is accepted; one that sets nothing is
// nil, which the xDS parents compare against, and one that sets a field
// keeps it.
func TestParseConfigUnderGRPCsName(t *testing.T) {
	b := builder{name: "round_robin"}
	for _, js := range []string{`{}`, `{"someFutureField":1}`} {
		cfg, err := b.ParseConfig(json.RawMessage(js))
		if err != nil || cfg != nil {
			t.Errorf("ParseConfig(%s) = %v, %v; want nil, nil", js, cfg, err)
		}
	}
	cfg, err := b.ParseConfig(json.RawMessage(`{"coalescePickers":true}`))
	if c, ok := cfg.(*policy.Config); err != nil || !ok || !c.CoalescePickers {
		t.Errorf("ParseConfig({\"coalescePickers\":true}) = %#v, %v; want a config with CoalescePickers", cfg, err)
	}
}
