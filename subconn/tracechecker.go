package subconn

import (
	"fmt"
	"slices"
	"sync"
)

// A TraceChecker is CheckTrace for a trace too long to keep: feed it events
// as they come (from a Subscription, say) and ask for the Report at any
// time. Each subchannel's events are kept until its destroy, checked then
// and dropped. CheckTrace judges every subchannel on its own events
// (manager close events matter only for subchannels never destroyed), so
// the merged report is the report of the whole trace.
//
// A TraceChecker is safe for concurrent use.
type TraceChecker struct {
	mu        sync.Mutex
	open      map[uint64][]Event // subchannel → its events so far
	destroyed map[uint64]bool    // destroyed subchannels → no event seen after
	managers  []Event            // manager_open and manager_close
	rep       Report
	events    int
}

// NewTraceChecker returns an empty checker.
func NewTraceChecker() *TraceChecker {
	return &TraceChecker{open: map[uint64][]Event{}, destroyed: map[uint64]bool{}}
}

// Add takes the next event. The events of one manager must come in seq
// order, as a Subscription delivers them.
func (c *TraceChecker) Add(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if e.Subchannel == 0 {
		if e.Kind == KindManagerOpen || e.Kind == KindManagerClose {
			c.managers = append(c.managers, e)
		}
		return
	}
	if c.destroyed[e.Subchannel] {
		// CheckTrace reports the first event after a destroy.
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
	evs := append(c.open[e.Subchannel], e)
	if e.Kind != KindDestroy {
		c.open[e.Subchannel] = evs
		return
	}
	delete(c.open, e.Subchannel)
	c.destroyed[e.Subchannel] = true
	c.rep.merge(CheckTrace(evs))
}

// Report checks what is still open and returns the report of the whole
// trace so far. It does not change the checker.
func (c *TraceChecker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := slices.Clone(c.managers)
	for _, evs := range c.open {
		rest = append(rest, evs...)
	}
	out := c.rep
	out.Problems = slices.Clone(c.rep.Problems)
	out.Events = c.events
	out.merge(CheckTrace(rest))
	return out
}

// merge adds the counts and problems of o to r.
func (r *Report) merge(o Report) {
	r.Subchannels += o.Subchannels
	r.Destroyed += o.Destroyed
	r.Live += o.Live
	r.Problems = append(r.Problems, o.Problems...)
}
