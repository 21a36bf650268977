package trace

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// pending returns how many events wait in s's buffer.
func (s *Subscription) pendingLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// TestPublishAllocatesNothing: publishing an event to subscribers, one
// that takes it and 64 whose filters refuse it, copies it into the taker's
// buffer and allocates nothing once the buffers have grown (a manager
// publishes every event while anyone listens).
func TestPublishAllocatesNothing(t *testing.T) {
	taker := Subscribe(1024, nil)
	defer taker.Close()
	for range 64 {
		s := Subscribe(1, func(e *Event) bool { return e.Manager == 0 })
		defer s.Close()
	}
	e := &Event{Seq: 1, Manager: 7, Subchannel: 3, Key: "127.0.0.1:1", Kind: KindRef}
	var batch []Event
	n := testing.AllocsPerRun(100, func() {
		for range 10 {
			Publish(e)
		}
		<-taker.Ready()
		batch, _ = taker.Read(batch)
		if len(batch) != 10 {
			t.Fatalf("read %d events, want the 10 published", len(batch))
		}
	})
	if n != 0 {
		t.Fatalf("Publish allocates %v times per 10 events, want 0", n)
	}
	if taker.Dropped() {
		t.Fatal("the taker was dropped")
	}
}

// A subscription to one target costs the publishers of other targets
// nothing: its filter is not even called for their events.
func TestSubscribeMatchIsNotAskedAboutOtherTargets(t *testing.T) {
	calls := 0
	s := SubscribeMatch(4, Match{Target: "target-b"}, func(*Event) bool { calls++; return true })
	Publish(&Event{Seq: 1, Target: "target-a", Kind: KindRef})
	if calls != 0 || s.pendingLen() != 0 {
		t.Fatalf("an event of another target reached the subscription (%d filter calls, %d buffered)", calls, s.pendingLen())
	}
	Publish(&Event{Seq: 2, Target: "target-b", Kind: KindRef})
	if calls != 1 || s.pendingLen() != 1 {
		t.Fatalf("its own target's event: %d filter calls, %d buffered; want 1 and 1", calls, s.pendingLen())
	}
	s.Close()
	// By key and by subchannel, too.
	for _, m := range []Match{{Key: "key-b"}, {Subchannel: 42}, {Target: "target-b", Key: "key-b"}} {
		calls = 0
		s := SubscribeMatch(4, m, func(*Event) bool { calls++; return true })
		Publish(&Event{Seq: 3, Target: "target-a", Subchannel: 41, Key: "key-a", Kind: KindRef})
		Publish(&Event{Seq: 4, Target: "target-b", Subchannel: 41, Key: "key-a", Kind: KindRef})
		if calls != 0 || s.pendingLen() != 0 {
			t.Errorf("%+v: an event it excludes reached the subscription (%d filter calls, %d buffered)", m, calls, s.pendingLen())
		}
		Publish(&Event{Seq: 5, Target: "target-b", Subchannel: 42, Key: "key-b", Kind: KindRef})
		if calls != 1 || s.pendingLen() != 1 {
			t.Errorf("%+v: an event it matches: %d filter calls, %d buffered; want 1 and 1", m, calls, s.pendingLen())
		}
		s.Close()
	}
	if x := hub.index.Load(); x != nil {
		if _, ok := x.byTarget["target-b"]; ok {
			t.Fatal("a closed subscription's target stays in the index")
		}
	}
}

// A fresh subscription holds almost nothing however large its bound: its
// buffer grows with the events it holds, never past the bound.
func TestSubscriptionBufferGrowsOnDemand(t *testing.T) {
	const n, bound = 100, 4096
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	subs := make([]*Subscription, n)
	for i := range subs {
		subs[i] = SubscribeMatch(bound, Match{Target: "grows-on-demand"}, nil)
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	// The whole buffer would be ~750 KB; the margin is for what other
	// goroutines allocate meanwhile.
	if per > 4096 {
		t.Errorf("a fresh subscription with a bound of %d events allocates %d B; want under 4 KiB", bound, per)
	}
	for _, s := range subs {
		if c := cap(s.pending); c != 0 {
			t.Fatalf("a fresh subscription holds a buffer of %d events", c)
		}
	}
	for _, s := range subs[1:] {
		s.Close()
	}
	s := subs[0]
	defer s.Close()
	for i := range bound {
		Publish(&Event{Seq: uint64(i + 1), Target: "grows-on-demand", Kind: KindRef})
	}
	s.mu.Lock()
	c := cap(s.pending)
	s.mu.Unlock()
	if c != bound || s.Dropped() {
		t.Fatalf("after %d events: capacity %d (want exactly the bound, %d), dropped %v", bound, c, bound, s.Dropped())
	}
}

// Publishers wake the reader once per batch: many events published while
// the reader is away leave one signal, and one Read takes them all.
func TestSubscriptionWakesOncePerBatch(t *testing.T) {
	s := SubscribeMatch(1000, Match{Target: "one-wake"}, nil)
	defer s.Close()
	for i := range 100 {
		Publish(&Event{Seq: uint64(i + 1), Target: "one-wake", Kind: KindRef})
	}
	if n := len(s.ready); n != 1 {
		t.Fatalf("%d signals waiting after 100 events, want 1", n)
	}
	<-s.Ready()
	batch, ok := s.Read(nil)
	if !ok || len(batch) != 100 || batch[0].Seq != 1 || batch[99].Seq != 100 {
		t.Fatalf("Read: %d events (ok %v), want seqs 1..100 in order", len(batch), ok)
	}
	select {
	case <-s.Ready():
		t.Fatal("a signal is left after the batch was read")
	default:
	}
}

// A subscriber that falls its bound behind is dropped: the event past the
// bound and every later one are lost, what was buffered stays readable,
// then Read reports the end; the hub counts the drop.
func TestSubscriptionFallingBehindIsDropped(t *testing.T) {
	dropped0 := DroppedSubscriptions()
	s := SubscribeMatch(4, Match{Target: "falls-behind"}, nil)
	for i := range 6 {
		Publish(&Event{Seq: uint64(i + 1), Target: "falls-behind", Kind: KindRef})
	}
	select {
	case <-s.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed after the subscription fell behind")
	}
	if !s.Dropped() || DroppedSubscriptions() != dropped0+1 {
		t.Fatalf("Dropped %v, DroppedSubscriptions +%d; want true and +1", s.Dropped(), DroppedSubscriptions()-dropped0)
	}
	var seqs []uint64
	for e := range s.Events() {
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != 4 || seqs[3] != 4 {
		t.Fatalf("read %v after the drop, want the 4 buffered (seqs 1..4)", seqs)
	}
	if _, ok := s.Read(nil); ok {
		t.Fatal("Read after the end reports more to come")
	}
	deadline := time.Now().Add(5 * time.Second)
	for Listening() && hasSub(s) {
		if time.Now().After(deadline) {
			t.Fatal("a dropped subscription stays in the hub")
		}
		time.Sleep(time.Millisecond)
	}
	s.Close() // after a drop: a no-op
}

func hasSub(s *Subscription) bool {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	return slices.Contains(hub.subs, s)
}

// Events yields every event in order across batches and ends at Close
// after the buffered ones.
func TestSubscriptionEvents(t *testing.T) {
	s := SubscribeMatch(1<<10, Match{Target: "events"}, nil)
	got := make(chan []uint64)
	go func() {
		var seqs []uint64
		for e := range s.Events() {
			seqs = append(seqs, e.Seq)
		}
		got <- seqs
	}()
	for i := range 500 {
		Publish(&Event{Seq: uint64(i + 1), Target: "events", Kind: KindRef})
		if i%50 == 0 {
			runtime.Gosched()
		}
	}
	s.Close()
	seqs := <-got
	if len(seqs) != 500 {
		t.Fatalf("Events yielded %d events, want 500", len(seqs))
	}
	for i, q := range seqs {
		if q != uint64(i+1) {
			t.Fatalf("event %d has seq %d, want %d", i, q, i+1)
		}
	}
}

// A reader of Events takes a busy publisher's events in batches, at most
// one per ReadPace: the publisher finds the buffer empty (and wakes the
// reader) about once per ReadPace, not once per event.
func TestEventsPacesABusyPublisher(t *testing.T) {
	s := SubscribeMatch(1<<16, Match{Target: "paced"}, nil)
	got := make(chan int)
	go func() {
		n := 0
		for range s.Events() {
			n++
		}
		got <- n
	}()
	const events = 2000
	wakes := 0
	start := time.Now()
	for i := range events {
		if s.pendingLen() == 0 {
			wakes++ // this event signals Ready
		}
		Publish(&Event{Seq: uint64(i + 1), Target: "paced", Kind: KindRef})
		for t0 := time.Now(); time.Since(t0) < 10*time.Microsecond; {
		}
	}
	elapsed := time.Since(start)
	s.Close()
	if n := <-got; n != events {
		t.Fatalf("the reader got %d of %d events", n, events)
	}
	// One wake per ReadPace, with room for the first and for a late reader.
	if most := int(elapsed/ReadPace) + 3; wakes > most {
		t.Fatalf("%d events over %v woke the reader %d times; want at most %d (one per %v)", events, elapsed, wakes, most, ReadPace)
	}
	t.Logf("%d events over %v: %d wakes", events, elapsed, wakes)
}
