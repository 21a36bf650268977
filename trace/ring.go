package trace

// A Ring keeps the latest events, up to its capacity: a manager's recent
// history for Manager.Trace and the live check. The zero Ring keeps nothing;
// Resize gives it room. A Ring is not safe for concurrent use (a manager
// guards its own with its lock).
type Ring struct {
	buf  []Event
	next int // index of the next write once buf is full
	size int
}

// Add keeps e, dropping the oldest event if the ring is full.
func (r *Ring) Add(e Event) {
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

// Events returns a copy of the kept events, oldest first.
func (r *Ring) Events() []Event {
	out := make([]Event, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
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
	old := r.Events()
	if len(old) > n {
		old = old[len(old)-n:]
	}
	r.buf, r.next, r.size = old, 0, n // oldest first: the next write after a full buf overwrites buf[0]
}
