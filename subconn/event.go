package subconn

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names what happened to a subchannel in an Event.
type Kind string

// The kinds of events in a refcount trace, in the order of a subchannel's
// life. See the package documentation for the lifecycle.
const (
	KindCreate       Kind = "create"        // NewSubConn returned a subchannel for a new key
	KindRef          Kind = "ref"           // a holder took a reference
	KindUnref        Kind = "unref"         // a holder dropped a reference
	KindConnect      Kind = "connect"       // Connect was called on the real SubConn
	KindState        Kind = "state"         // the real SubConn changed connectivity state
	KindGoAway       Kind = "goaway"        // READY→IDLE because the server sent GOAWAY
	KindConnLost     Kind = "conn_lost"     // READY→IDLE because the connection was lost
	KindShutdown     Kind = "shutdown"      // Shutdown was called (exactly once, at refs 0)
	KindSocketOpen   Kind = "socket_open"   // the dialer opened a socket for this subchannel
	KindSocketClose  Kind = "socket_close"  // a socket of this subchannel was closed
	KindDrainTimeout Kind = "drain_timeout" // sockets still open after the drain timeout were force-closed
	KindDestroy      Kind = "destroy"       // refs 0, Shutdown called and every owned socket closed
	KindLeak         Kind = "leak"          // a holder had not released when the manager closed
	KindManagerOpen  Kind = "manager_open"  // a manager was built (Subchannel is 0)
	KindManagerClose Kind = "manager_close" // a manager was closed (Subchannel is 0)
)

// An Event is one line of a refcount trace.
//
// Its JSON form, one object per line, is the trace format read by
// ReadTrace, CheckTrace and the leakproof CLI:
//
//	{"seq":12,"time":"2026-11-22T10:00:00.000000001Z","manager":1,"target":"dns:///svc:443",
//	 "subchannel":7,"key":"127.0.0.1:50051","event":"unref","refs_before":2,"refs_after":1,
//	 "state":"READY","holder":"endpoint[1]","reason":"address removed"}
//
// seq is process-wide and strictly increasing in emission order; within one
// manager events are delivered in seq order. subchannel and manager ids are
// process-wide and never reused. socket is present on socket events; cause
// on goaway and conn_lost events, where it is also the reason's first word.
type Event struct {
	Seq        uint64     `json:"seq"`
	Time       time.Time  `json:"time"`
	Manager    uint64     `json:"manager"`
	Target     string     `json:"target,omitempty"`
	Subchannel uint64     `json:"subchannel"`
	Key        string     `json:"key,omitempty"`
	Kind       Kind       `json:"event"`
	RefsBefore int        `json:"refs_before"`
	RefsAfter  int        `json:"refs_after"`
	State      string     `json:"state,omitempty"`
	Holder     string     `json:"holder,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Cause      Cause      `json:"cause,omitempty"`
	Socket     *SocketRef `json:"socket,omitempty"`
}

// SocketRef names one socket in an Event.
type SocketRef struct {
	ID     uint64 `json:"id"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
}

// String renders e as one readable line, for logs and `leakproof trace watch`:
//
//	seq=12 #7 127.0.0.1:50051 unref 2->1 holder=endpoint{127.0.0.1:50051} state=READY reason="address removed"
func (e Event) String() string {
	s := fmt.Sprintf("seq=%d #%d %s %s", e.Seq, e.Subchannel, e.Key, e.Kind)
	if e.Subchannel == 0 {
		s = fmt.Sprintf("seq=%d manager=%d %s target=%q", e.Seq, e.Manager, e.Kind, e.Target)
	}
	switch e.Kind {
	case KindRef, KindUnref, KindLeak, KindShutdown, KindDestroy:
		s += fmt.Sprintf(" %d->%d", e.RefsBefore, e.RefsAfter)
	}
	if e.Holder != "" {
		s += " holder=" + e.Holder
	}
	if e.State != "" {
		s += " state=" + e.State
	}
	if e.Socket != nil {
		s += fmt.Sprintf(" socket=%d %s->%s", e.Socket.ID, e.Socket.Local, e.Socket.Remote)
	}
	if e.Reason != "" {
		s += fmt.Sprintf(" reason=%q", e.Reason)
	}
	return s
}

// ring is a bounded buffer of the most recent events of one manager.
// Guarded by the manager's mu.
type ring struct {
	buf  []Event
	next int // index of the next write once buf is full
	size int
}

func (r *ring) add(e Event) {
	if r.size <= 0 {
		return
	}
	if len(r.buf) < r.size {
		r.buf = append(r.buf, e)
		return
	}
	r.buf[r.next] = e
	r.next = (r.next + 1) % r.size
}

// events returns the buffered events, oldest first.
func (r *ring) events() []Event {
	out := make([]Event, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

func (r *ring) resize(n int) {
	n = max(n, 0)
	if n == r.size {
		return // policies re-apply their config on every resolver update
	}
	old := r.events()
	if len(old) > n {
		old = old[len(old)-n:]
	}
	r.buf, r.next, r.size = old, 0, n // oldest first: the next write after a full buf overwrites buf[0]
}

// The process-wide event hub. Every manager publishes to it; subscribers
// filter. Publishing never blocks: a subscriber whose buffer is full is
// dropped and its channel closed.
var hub struct {
	seq     atomic.Uint64
	nsubs   atomic.Int32 // fast path: zero means nobody listens
	mu      sync.RWMutex // held for reading while sending, for writing to close
	subs    []*Subscription
	dropped atomic.Uint64 // subscriptions dropped for falling behind
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
	filter  func(*Event) bool
	dropped atomic.Bool
	closed  atomic.Bool
	once    sync.Once
}

// Subscribe starts a subscription with a buffer of buf events (at least 1).
// filter may be nil (every event) and must be fast and must not call into
// a Manager. Call Close when done.
func Subscribe(buf int, filter func(*Event) bool) *Subscription {
	if buf < 1 {
		buf = 1
	}
	c := make(chan Event, buf)
	s := &Subscription{C: c, c: c, filter: filter}
	hub.mu.Lock()
	hub.subs = append(hub.subs, s)
	hub.nsubs.Store(int32(len(hub.subs)))
	hub.mu.Unlock()
	return s
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
		for i, x := range hub.subs {
			if x == s {
				hub.subs = append(hub.subs[:i:i], hub.subs[i+1:]...)
				break
			}
		}
		hub.nsubs.Store(int32(len(hub.subs)))
		close(s.c)
		hub.mu.Unlock()
	})
}

// DroppedSubscriptions returns how many subscriptions in this process have
// been dropped for falling behind.
func DroppedSubscriptions() uint64 { return hub.dropped.Load() }

// publish sends e to every subscriber. e is passed by value so that an
// event built for the ring alone does not escape to the heap.
func publish(e Event) {
	hub.mu.RLock()
	for _, s := range hub.subs {
		if s.closed.Load() || (s.filter != nil && !s.filter(&e)) {
			continue
		}
		select {
		case s.c <- e:
		default:
			if s.dropped.CompareAndSwap(false, true) {
				hub.dropped.Add(1)
				s.closed.Store(true)
				go s.Close() // needs hub.mu for writing
			}
		}
	}
	hub.mu.RUnlock()
}

// listening reports whether any subscriber exists.
func listening() bool { return hub.nsubs.Load() > 0 }

// A TraceWriter writes the events of every manager as JSON lines. Create it
// with NewTraceWriter before the channels whose trace you want, and Close it
// after they have closed.
type TraceWriter struct {
	sub  *Subscription
	done chan struct{}
	err  error // set by the writer goroutine before done is closed
}

// ErrTraceDropped is returned by TraceWriter.Close when the writer fell so far
// behind that events were lost: the trace is incomplete.
var ErrTraceDropped = errors.New("subconn: trace writer fell behind and was dropped; the trace is incomplete")

// NewTraceWriter starts writing every event (or those filter accepts) to w as
// JSON lines, buffering up to buf events (65536 if buf <= 0) ahead of w.
func NewTraceWriter(w io.Writer, buf int, filter func(*Event) bool) *TraceWriter {
	if buf <= 0 {
		buf = 1 << 16
	}
	tw := &TraceWriter{sub: Subscribe(buf, filter), done: make(chan struct{})}
	go tw.run(w)
	return tw
}

func (tw *TraceWriter) run(w io.Writer) {
	defer close(tw.done)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for e := range tw.sub.C {
		if tw.err != nil {
			continue // drain
		}
		if err := enc.Encode(e); err != nil {
			tw.err = fmt.Errorf("subconn: writing trace: %w", err)
			continue
		}
		if len(tw.sub.C) == 0 {
			if err := bw.Flush(); err != nil {
				tw.err = fmt.Errorf("subconn: writing trace: %w", err)
			}
		}
	}
	if err := bw.Flush(); err != nil && tw.err == nil {
		tw.err = fmt.Errorf("subconn: writing trace: %w", err)
	}
}

// Close stops the writer after writing every event already received, and
// returns the first write error, or ErrTraceDropped if events were lost.
func (tw *TraceWriter) Close() error {
	tw.sub.Close()
	<-tw.done
	if tw.err != nil {
		return tw.err
	}
	if tw.sub.Dropped() {
		return ErrTraceDropped
	}
	return nil
}
