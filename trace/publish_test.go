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
