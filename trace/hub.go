package trace

import (
	"iter"
	"sync"
	"sync/atomic"
)

// The process-wide event hub. Every manager publishes to it; subscribers
// filter. Publishing never blocks: a subscriber that falls its bound behind
// is dropped.
var hub struct {
	nsubs    atomic.Int32               // fast path: zero means nobody listens
	mu       sync.RWMutex               // held for reading while delivering, for writing to add or remove
	subs     []*Subscription            // subscriptions to every target
	byTarget map[string][]*Subscription // subscriptions to one target
	dropped  atomic.Uint64              // subscriptions dropped for falling behind
}

// A Subscription receives the events of every manager in the process, or of
// those its filter accepts. Publishers never wait for it: they append each
// event to its buffer under a short lock and signal Ready when the buffer
// turns non-empty; the reader takes everything waiting at once with Read.
// The buffer grows on demand up to the subscription's bound. A subscription
// whose buffer holds bound events when one more arrives is dropped: that
// event and every later one are lost, Dropped reports true, and the events
// already buffered stay readable before Read reports the end.
//
// A Subscription holds at most two buffers of bound events: the one
// publishers fill and the one Read returned, which the reader hands back
// to the next Read.
type Subscription struct {
	// initialized at subscription, read-only after
	target string // "": every target
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

// Subscribe starts a subscription that may fall bound events behind (at
// least 1) before it is dropped. filter may be nil (every event), must be
// fast and must not call into a Manager. Call Close when done.
func Subscribe(bound int, filter func(*Event) bool) *Subscription {
	return SubscribeTarget(bound, "", filter)
}

// SubscribeTarget is Subscribe for the events of channel target alone
// ("" for every target). Publishers find a subscription to one target by
// its target, so subscriptions to other targets cost them nothing: not
// even a call of their filters.
func SubscribeTarget(bound int, target string, filter func(*Event) bool) *Subscription {
	s := &Subscription{
		target: target,
		filter: filter,
		bound:  max(bound, 1),
		ready:  make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	hub.mu.Lock()
	if target == "" {
		hub.subs = append(hub.subs, s)
	} else {
		if hub.byTarget == nil {
			hub.byTarget = map[string][]*Subscription{}
		}
		hub.byTarget[target] = append(hub.byTarget[target], s)
	}
	hub.nsubs.Add(1)
	hub.mu.Unlock()
	return s
}

// remove returns list without s.
func remove(list []*Subscription, s *Subscription) []*Subscription {
	for i, x := range list {
		if x == s {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
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

// Events returns an iterator over the subscription's events that waits for
// each batch and ends when the subscription has ended and every buffered
// event has been yielded.
func (s *Subscription) Events() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		var batch []Event
		for {
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
		if s.target == "" {
			hub.subs = remove(hub.subs, s)
		} else if l := remove(hub.byTarget[s.target], s); len(l) > 0 {
			hub.byTarget[s.target] = l
		} else {
			delete(hub.byTarget, s.target)
		}
		hub.nsubs.Add(-1)
		hub.mu.Unlock()
	})
}

// DroppedSubscriptions returns how many subscriptions in this process have
// been dropped for falling behind.
func DroppedSubscriptions() uint64 { return hub.dropped.Load() }

// Publish appends a copy of *e to every subscription whose filter accepts
// it, without waiting: a subscription already holding its bound is
// dropped. subconn's managers publish their events here, from memory they
// own (so that publishing allocates nothing): e is read during the call
// only, and a filter must not keep it.
func Publish(e *Event) {
	hub.mu.RLock()
	deliver(hub.subs, e)
	if len(hub.byTarget) > 0 {
		deliver(hub.byTarget[e.Target], e)
	}
	hub.mu.RUnlock()
}

// Listening reports whether any subscription is open, so that a source can
// skip building events nobody reads.
func Listening() bool { return hub.nsubs.Load() > 0 }

// deliver appends e to every subscription of subs its filter accepts.
// Caller must hold hub.mu for reading.
func deliver(subs []*Subscription, e *Event) {
	for _, s := range subs {
		if s.filter != nil && !s.filter(e) {
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
	defer s.mu.Unlock()
	switch n := len(s.pending); {
	case s.ended:
		return
	case n == s.bound:
		s.dropped = true
		s.endLocked()
		hub.dropped.Add(1)
		go s.unhook() // needs hub.mu for writing; the caller holds it for reading
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
}
