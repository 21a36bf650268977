package trace

import (
	"sync"
	"sync/atomic"
)

// The process-wide event hub. Every manager publishes to it; subscribers
// filter. Publishing never blocks: a subscriber whose buffer is full is
// dropped and its channel closed.
var hub struct {
	nsubs    atomic.Int32               // fast path: zero means nobody listens
	mu       sync.RWMutex               // held for reading while sending, for writing to close
	subs     []*Subscription            // subscriptions to every target
	byTarget map[string][]*Subscription // subscriptions to one target
	dropped  atomic.Uint64              // subscriptions dropped for falling behind
}

// A Subscription receives the events of every manager in the process, or of
// those its filter accepts, on C. Publishers never wait for a subscriber: if
// C's buffer is full, the subscription is dropped, Dropped reports true and
// C is closed.
type Subscription struct {
	// C delivers events in seq order per manager. It is closed by Close or
	// when the subscription is dropped.
	C <-chan Event

	c       chan Event
	target  string // "": every target
	filter  func(*Event) bool
	dropped atomic.Bool
	closed  atomic.Bool
	once    sync.Once
}

// Subscribe starts a subscription with a buffer of buf events (at least 1).
// filter may be nil (every event) and must be fast and must not call into
// a Manager. Call Close when done.
func Subscribe(buf int, filter func(*Event) bool) *Subscription {
	return SubscribeTarget(buf, "", filter)
}

// SubscribeTarget is Subscribe for the events of channel target alone
// ("" for every target). Publishers find a subscription to one target by
// its target, so subscriptions to other targets cost them nothing: not
// even a call of their filters.
func SubscribeTarget(buf int, target string, filter func(*Event) bool) *Subscription {
	if buf < 1 {
		buf = 1
	}
	c := make(chan Event, buf)
	s := &Subscription{C: c, c: c, target: target, filter: filter}
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

// Dropped reports whether the subscription was dropped because its buffer
// was full: events after that point were not delivered.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

// Close ends the subscription and closes C. Events already buffered stay
// readable. Close is safe to call more than once.
func (s *Subscription) Close() {
	s.closed.Store(true)
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
		close(s.c)
		hub.mu.Unlock()
	})
}

// DroppedSubscriptions returns how many subscriptions in this process have
// been dropped for falling behind.
func DroppedSubscriptions() uint64 { return hub.dropped.Load() }

// Publish sends a copy of *e to every subscription whose filter accepts
// it, without waiting: a subscription whose buffer is full is dropped.
// subconn's managers publish their events here, from memory they own (so
// that publishing allocates nothing): e is read during the call only, and
// a filter must not keep it.
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

// deliver sends e to every subscription of subs its filter accepts.
// Caller must hold hub.mu for reading.
func deliver(subs []*Subscription, e *Event) {
	for _, s := range subs {
		if s.closed.Load() || (s.filter != nil && !s.filter(e)) {
			continue
		}
		select {
		case s.c <- *e:
		default:
			if s.dropped.CompareAndSwap(false, true) {
				hub.dropped.Add(1)
				s.closed.Store(true)
				go s.Close() // needs hub.mu for writing
			}
		}
	}
}
