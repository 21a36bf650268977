package trace

import (
	"fmt"
	"slices"
	"sync"
)

// A Checker is Check for a trace too long to keep: feed it events
// as they come (from a Subscription, say) and ask for the Report at any
// time. Each subchannel's events are kept until its destroy, checked then
// and dropped. Check judges every subchannel on its own events
// (manager close events matter only for subchannels never destroyed), so
// the merged report is the report of the whole trace.
//
// Its memory stays bounded however long it is fed: a manager's close event
// is kept only while that manager has subchannels not yet destroyed, and an
// event after a destroy is caught for the latest destroyedWindow destroyed
// subchannels (such an event comes within milliseconds of the destroy: a
// dial racing a Shutdown, say).
//
// A Checker is safe for concurrent use.
type Checker struct {
	mu        sync.Mutex
	open      map[uint64][]Event // subchannel → its events so far
	destroyed map[uint64]bool    // recently destroyed subchannels → no event seen after
	recent    []uint64           // destroyed ids in destroy order, a ring of destroyedWindow
	next      int                // where recent's next id goes
	perMgr    map[uint64]int     // manager → its subchannels not yet destroyed
	closed    map[uint64]Event   // manager_close of managers in perMgr
	rep       Report
	events    int
}

// destroyedWindow is how many destroyed subchannels a Checker
// remembers, to report an event that comes after a destroy.
const destroyedWindow = 1 << 14

// NewChecker returns an empty checker.
func NewChecker() *Checker {
	return &Checker{
		open:      map[uint64][]Event{},
		destroyed: map[uint64]bool{},
		perMgr:    map[uint64]int{},
		closed:    map[uint64]Event{},
	}
}

// Add takes the next event. The events of one manager must come in seq
// order, as a Subscription delivers them.
func (c *Checker) Add(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if e.Subchannel == 0 {
		if e.Kind == KindManagerClose && c.perMgr[e.Manager] > 0 {
			c.closed[e.Manager] = e
		}
		return
	}
	if c.destroyed[e.Subchannel] {
		// Check reports the first event after a destroy.
		c.destroyed[e.Subchannel] = false
		c.rep.Problems = append(c.rep.Problems, Problem{
			Kind: ProblemInvalid, Manager: e.Manager, Target: e.Target, Subchannel: e.Subchannel, Key: e.Key,
			Message: fmt.Sprintf("event %q (seq %d) after destroy", e.Kind, e.Seq),
			Events:  []Event{e},
		})
		return
	}
	if _, seen := c.destroyed[e.Subchannel]; seen {
		return // already reported
	}
	evs, known := c.open[e.Subchannel]
	if !known {
		c.perMgr[e.Manager]++
	}
	evs = append(evs, e)
	if e.Kind != KindDestroy {
		c.open[e.Subchannel] = evs
		return
	}
	delete(c.open, e.Subchannel)
	c.rememberDestroyedLocked(e.Subchannel)
	if c.perMgr[e.Manager]--; c.perMgr[e.Manager] <= 0 {
		delete(c.perMgr, e.Manager)
		delete(c.closed, e.Manager)
	}
	c.rep.merge(Check(evs))
}

// rememberDestroyedLocked notes id as destroyed, forgetting the oldest
// beyond destroyedWindow. Caller must hold c.mu.
func (c *Checker) rememberDestroyedLocked(id uint64) {
	if len(c.recent) < destroyedWindow {
		c.recent = append(c.recent, id)
	} else {
		delete(c.destroyed, c.recent[c.next])
		c.recent[c.next] = id
		c.next = (c.next + 1) % destroyedWindow
	}
	c.destroyed[id] = true
}

// Report checks what is still open and returns the report of the whole
// trace so far. It does not change the checker.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rest []Event
	for _, e := range c.closed {
		rest = append(rest, e)
	}
	for _, evs := range c.open {
		rest = append(rest, evs...)
	}
	out := c.rep
	out.Problems = slices.Clone(c.rep.Problems)
	out.Events = c.events
	out.merge(Check(rest))
	return out
}

// merge adds the counts and problems of o to r.
func (r *Report) merge(o Report) {
	r.Subchannels += o.Subchannels
	r.Destroyed += o.Destroyed
	r.Live += o.Live
	r.Problems = append(r.Problems, o.Problems...)
}
