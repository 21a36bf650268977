package trace

import (
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The process-wide event hub. Every manager publishes to it; subscribers
// filter. Publishing never blocks and takes no lock of the hub: publishers
// read an immutable index of the subscriptions, which Subscribe and the
// end of a subscription replace.
var hub struct {
	nsubs   atomic.Int32             // fast path: zero means nobody listens
	index   atomic.Pointer[hubIndex] // nil: nobody listens
	dropped atomic.Uint64            // subscriptions dropped for falling behind

	mu   sync.Mutex      // serializes changes of subs and index
	subs []*Subscription // every open subscription
}

// hubIndex finds the subscriptions an event may interest by the one field
// of their Match that selects most: subchannel, else key, else target.
// Publishers pay one map lookup per indexed field, however many
// subscriptions wait on other values, and call the filters of the
// subscriptions found only.
type hubIndex struct {
	any          []*Subscription // no field set: every event
	byTarget     map[string][]*Subscription
	byKey        map[string][]*Subscription
	bySubchannel map[uint64][]*Subscription
}

// A Match selects events by fields the hub indexes: the publisher of an
// event that a Match excludes does not even call the subscription's
// filter. A zero field matches every value.
type Match struct {
	Target     string // the channel target
	Key        string // the backend key
	Subchannel uint64 // the subchannel id
}

// Matches reports whether m selects e.
func (m *Match) Matches(e *Event) bool {
	return (m.Target == "" || m.Target == e.Target) &&
		(m.Key == "" || m.Key == e.Key) &&
		(m.Subchannel == 0 || m.Subchannel == e.Subchannel)
}

// A Subscription receives the events of every manager in the process, or of
// those its Match and filter accept. Publishers never wait for it: they
// append each event to its buffer under a short lock and signal Ready when
// the buffer turns non-empty; the reader takes everything waiting at once
// with Read. The buffer grows on demand up to the subscription's bound. A
// subscription whose buffer holds bound events when one more arrives is
// dropped: that event and every later one are lost, Dropped reports true,
// and the events already buffered stay readable before Read reports the
// end.
//
// A Subscription holds at most two buffers of bound events: the one
// publishers fill and the one Read returned, which the reader hands back
// to the next Read.
type Subscription struct {
	// initialized at subscription, read-only after
	match  Match
	filter func(*Event) bool
	bound  int
	ready  chan struct{} // one slot: events are waiting; closed at the end
	done   chan struct{} // closed at the end
	once   sync.Once     // removal from the hub

	mu      sync.Mutex
	pending []Event // delivered, not yet read; at most bound
	ended   bool    // closed or dropped: nothing more is delivered
	dropped bool
}

// Subscribe starts a subscription to every event filter accepts (nil:
// every event) that may fall bound events behind (at least 1) before it is
// dropped. filter must be fast and must not call into a Manager; it runs
// for every event of the process, so prefer SubscribeMatch where a Match
// says what filter would. Call Close when done.
func Subscribe(bound int, filter func(*Event) bool) *Subscription {
	return SubscribeMatch(bound, Match{}, filter)
}

// SubscribeMatch is Subscribe for the events m matches and filter (if not
// nil) accepts. Subscriptions whose Match excludes an event cost its
// publisher one map lookup in all, not a call each.
func SubscribeMatch(bound int, m Match, filter func(*Event) bool) *Subscription {
	s := &Subscription{
		match:  m,
		filter: filter,
		bound:  max(bound, 1),
		ready:  make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	hub.mu.Lock()
	hub.subs = append(hub.subs, s)
	reindexLocked()
	hub.nsubs.Add(1)
	hub.mu.Unlock()
	return s
}

// reindexLocked publishes a new index of hub.subs. Caller must hold hub.mu.
func reindexLocked() {
	if len(hub.subs) == 0 {
		hub.index.Store(nil)
		return
	}
	x := &hubIndex{}
	for _, s := range hub.subs {
		switch m := s.match; {
		case m.Subchannel != 0:
			if x.bySubchannel == nil {
				x.bySubchannel = map[uint64][]*Subscription{}
			}
			x.bySubchannel[m.Subchannel] = append(x.bySubchannel[m.Subchannel], s)
		case m.Key != "":
			if x.byKey == nil {
				x.byKey = map[string][]*Subscription{}
			}
			x.byKey[m.Key] = append(x.byKey[m.Key], s)
		case m.Target != "":
			if x.byTarget == nil {
				x.byTarget = map[string][]*Subscription{}
			}
			x.byTarget[m.Target] = append(x.byTarget[m.Target], s)
		default:
			x.any = append(x.any, s)
		}
	}
	hub.index.Store(x)
}

// Ready returns a channel that receives a value when events are waiting to
// be read, and is closed when the subscription has ended (closed or
// dropped). One value may stand for many events: after each receive, call
// Read once.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Done returns a channel that is closed when the subscription has ended:
// closed, or dropped for falling behind. Events buffered before the end
// stay readable.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Read returns every event waiting, in delivery order (seq order per
// manager), without waiting, and ok=false once the subscription has ended
// and nothing is left. Pass the previous batch as buf: its memory becomes
// the buffer publishers fill next, so that a reader that keeps up
// allocates nothing. buf's events must not be used after the call.
func (s *Subscription) Read(buf []Event) (batch []Event, ok bool) {
	clear(buf) // keep no strings alive
	s.mu.Lock()
	batch, s.pending = s.pending, buf[:0]
	ended := s.ended
	s.mu.Unlock()
	return batch, len(batch) > 0 || !ended
}

// ReadPace is how long Events (and the admin service's watchers, and
// NewWriter) let events gather after each batch before taking the next:
// a reader woken for every event would cost a busy publisher a goroutine
// wake-up per event; paced, at most one per ReadPace. Events then reach the
// reader at most ReadPace late, and a subscription's bound must hold what
// publishers add in ReadPace (about 2,000 events at the busiest).
const ReadPace = time.Millisecond

// Events returns an iterator over the subscription's events that waits for
// each batch and ends when the subscription has ended and every buffered
// event has been yielded.
func (s *Subscription) Events() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		var batch []Event
		for {
			if batch != nil {
				time.Sleep(ReadPace)
			}
			_, open := <-s.ready
			batch, _ = s.Read(batch)
			for _, e := range batch {
				if !yield(e) {
					return
				}
			}
			if !open {
				return // ended: the Read above took the last events
			}
		}
	}
}

// Dropped reports whether the subscription was dropped because it fell its
// bound behind: events after that point were not delivered.
func (s *Subscription) Dropped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close ends the subscription. Events already buffered stay readable.
// Close is safe to call more than once.
func (s *Subscription) Close() {
	s.mu.Lock()
	s.endLocked()
	s.mu.Unlock()
	s.unhook()
}

// endLocked marks the end and wakes the reader. Caller must hold s.mu.
func (s *Subscription) endLocked() {
	if !s.ended {
		s.ended = true
		close(s.ready)
		close(s.done)
	}
}

// unhook removes s from the hub, once.
func (s *Subscription) unhook() {
	s.once.Do(func() {
		hub.mu.Lock()
		if i := slices.Index(hub.subs, s); i >= 0 {
			hub.subs = slices.Delete(hub.subs, i, i+1)
		}
		reindexLocked()
		hub.nsubs.Add(-1)
		hub.mu.Unlock()
	})
}

// DroppedSubscriptions returns how many subscriptions in this process have
// been dropped for falling behind.
func DroppedSubscriptions() uint64 { return hub.dropped.Load() }

// Publish appends a copy of *e to every subscription whose Match and
// filter accept it, without waiting: a subscription already holding its
// bound is dropped. subconn's managers publish their events here, from
// memory they own (so that publishing allocates nothing): e is read during
// the call only, and a filter must not keep it.
func Publish(e *Event) {
	x := hub.index.Load()
	if x == nil {
		return
	}
	for _, s := range x.any { // a zero Match: the filter alone decides
		if s.filter == nil || s.filter(e) {
			s.add(e)
		}
	}
	if x.byTarget != nil {
		deliver(x.byTarget[e.Target], e)
	}
	if x.byKey != nil && e.Key != "" {
		deliver(x.byKey[e.Key], e)
	}
	if x.bySubchannel != nil && e.Subchannel != 0 {
		deliver(x.bySubchannel[e.Subchannel], e)
	}
}

// Listening reports whether any subscription is open, so that a source can
// skip building events nobody reads.
func Listening() bool { return hub.nsubs.Load() > 0 }

// deliver appends e to every subscription of subs that accepts it.
func deliver(subs []*Subscription, e *Event) {
	for _, s := range subs {
		if !s.match.Matches(e) || (s.filter != nil && !s.filter(e)) {
			continue
		}
		s.add(e)
	}
}

// add appends *e to s's buffer, growing it up to the bound, and signals
// Ready when the buffer was empty: a reader woken once takes every event
// added until its Read.
func (s *Subscription) add(e *Event) {
	s.mu.Lock()
	switch n := len(s.pending); {
	case s.ended:
		s.mu.Unlock()
		return
	case n == s.bound:
		s.dropped = true
		s.endLocked()
		s.mu.Unlock()
		hub.dropped.Add(1)
		s.unhook()
		return
	case n == cap(s.pending):
		// Amortised growth, never past the bound.
		grown := make([]Event, n, min(max(2*n, 16), s.bound))
		copy(grown, s.pending)
		s.pending = grown
	}
	s.pending = append(s.pending, *e)
	if len(s.pending) == 1 {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}
