package subconn

import (
	"sync/atomic"
	"time"

	"github.com/leakproof/leakproof/trace"
)

// eventSeq numbers the events of every manager in the process, in emission
// order: an Event's Seq.
var eventSeq atomic.Uint64

// tracingLocked reports whether events are recorded at all. Caller must hold
// m.mu.
func (m *Manager) tracingLocked() bool { return m.ring.Cap() > 0 || trace.Listening() }

// emitLocked records e, an event about r (nil for manager events), after
// filling in what every event carries: seq, time, manager and target, and
// r's id, key and state. Callers name the rest (Kind, refs, holder, reason,
// cause, socket) in a struct literal. Caller must hold m.mu, which keeps a
// manager's events in seq order.
func (m *Manager) emitLocked(r *record, e trace.Event) {
	if !m.tracingLocked() {
		return
	}
	e.Seq = eventSeq.Add(1)
	e.Time = time.Now()
	e.Manager, e.Target = m.id, m.target
	if r != nil {
		e.Subchannel, e.Key, e.State = r.id, r.key(), r.stateLocked().String()
	}
	m.ring.Add(&e)
	if trace.Listening() {
		// Published from the manager's own memory: e itself would escape
		// to the heap on every event, listened to or not.
		m.pub = e
		trace.Publish(&m.pub)
		m.pub = trace.Event{} // keep no strings alive
	}
}

// emitLossLocked records the goaway or conn_lost event of l. Caller must
// hold m.mu.
func (m *Manager) emitLossLocked(r *record, l loss) {
	m.emitLocked(r, trace.Event{Kind: l.kind, RefsBefore: int(r.refs), RefsAfter: int(r.refs), Reason: l.reason(), Cause: l.cause})
}
