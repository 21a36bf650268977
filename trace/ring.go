package trace

import "time"

// A Ring keeps the latest events of one manager, up to its capacity: its
// recent history for Manager.Trace and the live check. The zero Ring keeps
// nothing; Resize gives it room. A Ring is not safe for concurrent use (a
// manager guards its own with its lock).
//
// Events are kept in a compact form (a manager keeps up to 512 of them, and
// a process may run thousands of managers): the manager id and target once
// per ring, the time as wall-clock nanoseconds, the refs as int32. 136
// bytes an event instead of Event's 184.
type Ring struct {
	buf     []ringEntry
	next    int // index of the next write once buf is full
	size    int
	manager uint64 // of the latest event added
	target  string
}

// ringEntry is an Event without what is the same for every event of one
// manager, and with a narrower time and refs.
type ringEntry struct {
	seq        uint64
	unixNano   int64
	subchannel uint64
	key        string
	kind       Kind
	refsBefore int32
	refsAfter  int32
	state      string
	holder     string
	reason     string
	cause      Cause
	socket     *SocketRef
}

// Add keeps e, dropping the oldest event if the ring is full.
func (r *Ring) Add(e *Event) {
	if r.size <= 0 {
		return
	}
	r.manager, r.target = e.Manager, e.Target
	x := ringEntry{
		seq: e.Seq, unixNano: e.Time.UnixNano(), subchannel: e.Subchannel, key: e.Key, kind: e.Kind,
		refsBefore: int32(e.RefsBefore), refsAfter: int32(e.RefsAfter),
		state: e.State, holder: e.Holder, reason: e.Reason, cause: e.Cause, socket: e.Socket,
	}
	if len(r.buf) < r.size {
		if len(r.buf) == cap(r.buf) {
			// Grow by doubling, but never past size: append's growth
			// would leave ~90 unused entries (12 KB) at the default 512.
			nb := make([]ringEntry, len(r.buf), min(max(2*cap(r.buf), 8), r.size))
			copy(nb, r.buf)
			r.buf = nb
		}
		r.buf = append(r.buf, x)
		return
	}
	r.buf[r.next] = x
	if r.next++; r.next == r.size {
		r.next = 0
	}
}

// Events returns a copy of the kept events, oldest first.
func (r *Ring) Events() []Event {
	out := make([]Event, 0, len(r.buf))
	for _, part := range [2][]ringEntry{r.buf[r.next:], r.buf[:r.next]} {
		for i := range part {
			out = append(out, r.event(&part[i]))
		}
	}
	return out
}

func (r *Ring) event(x *ringEntry) Event {
	return Event{
		Seq: x.seq, Time: time.Unix(0, x.unixNano), Manager: r.manager, Target: r.target,
		Subchannel: x.subchannel, Key: x.key, Kind: x.kind,
		RefsBefore: int(x.refsBefore), RefsAfter: int(x.refsAfter),
		State: x.state, Holder: x.holder, Reason: x.reason, Cause: x.cause, Socket: x.socket,
	}
}

// Cap returns how many events the ring keeps.
func (r *Ring) Cap() int { return r.size }

// Resize changes how many events the ring keeps (0 or less: none), keeping
// the latest of those it holds.
func (r *Ring) Resize(n int) {
	n = max(n, 0)
	if n == r.size {
		return // policies re-apply their config on every resolver update
	}
	// A new array of what is kept, oldest first, so that a shrunk ring
	// does not keep its old array alive (the next write after a full buf
	// overwrites buf[0]).
	keep := min(len(r.buf), n)
	kept := make([]ringEntry, 0, keep)
	skip := len(r.buf) - keep // the oldest, which do not fit
	for _, part := range [2][]ringEntry{r.buf[r.next:], r.buf[:r.next]} {
		if skip >= len(part) {
			skip -= len(part)
			continue
		}
		kept = append(kept, part[skip:]...)
		skip = 0
	}
	r.buf, r.next, r.size = kept, 0, n
}
