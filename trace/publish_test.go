package trace

import "testing"

// TestPublishAllocatesNothing: publishing an event to subscribers, one
// that takes it and 64 whose filters refuse it, copies it into the taker's
// buffer and allocates nothing (a manager publishes every event while
// anyone listens).
func TestPublishAllocatesNothing(t *testing.T) {
	taker := Subscribe(1024, nil)
	defer taker.Close()
	for range 64 {
		s := Subscribe(1, func(e *Event) bool { return e.Manager == 0 })
		defer s.Close()
	}
	e := &Event{Seq: 1, Manager: 7, Subchannel: 3, Key: "127.0.0.1:1", Kind: KindRef}
	n := testing.AllocsPerRun(100, func() {
		Publish(e)
		<-taker.C
	})
	if n != 0 {
		t.Fatalf("Publish allocates %v times per event, want 0", n)
	}
	if taker.Dropped() {
		t.Fatal("the taker was dropped")
	}
}

// A subscription to one target costs the publishers of other targets
// nothing: its filter is not even called for their events.
func TestSubscribeTargetIsNotAskedAboutOtherTargets(t *testing.T) {
	calls := 0
	s := SubscribeTarget(4, "target-b", func(*Event) bool { calls++; return true })
	Publish(&Event{Seq: 1, Target: "target-a", Kind: KindRef})
	if calls != 0 || len(s.C) != 0 {
		t.Fatalf("an event of another target reached the subscription (%d filter calls, %d buffered)", calls, len(s.C))
	}
	Publish(&Event{Seq: 2, Target: "target-b", Kind: KindRef})
	if calls != 1 || len(s.C) != 1 {
		t.Fatalf("its own target's event: %d filter calls, %d buffered; want 1 and 1", calls, len(s.C))
	}
	s.Close()
	hub.mu.RLock()
	defer hub.mu.RUnlock()
	if _, ok := hub.byTarget["target-b"]; ok {
		t.Fatal("a closed subscription's target stays in the index")
	}
}
