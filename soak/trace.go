package soak

import (
	"fmt"
	"sync"

	"github.com/leakproof/leakproof/subconn"
)

// traceChecker runs subconn.CheckTrace over a trace that may be too long to
// keep: each subchannel's events are kept until its destroy, checked then
// and dropped. CheckTrace judges every subchannel on its own events (manager
// close events matter only for subchannels never destroyed), so the merged
// report is the report of the whole trace; the unit tests compare the two.
type traceChecker struct {
	mu        sync.Mutex
	open      map[uint64][]subconn.Event // subchannel → its events so far
	destroyed map[uint64]bool
	managers  []subconn.Event // manager_open and manager_close
	rep       subconn.Report
	events    int
}

func newTraceChecker() *traceChecker {
	return &traceChecker{open: map[uint64][]subconn.Event{}, destroyed: map[uint64]bool{}}
}

// add takes the events of one manager in seq order.
func (c *traceChecker) add(e subconn.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	if e.Subchannel == 0 {
		if e.Kind == subconn.KindManagerOpen || e.Kind == subconn.KindManagerClose {
			c.managers = append(c.managers, e)
		}
		return
	}
	if c.destroyed[e.Subchannel] {
		// CheckTrace reports the first event after a destroy.
		c.destroyed[e.Subchannel] = false
		c.rep.Problems = append(c.rep.Problems, subconn.Problem{
			Kind: subconn.ProblemInvalid, Manager: e.Manager, Subchannel: e.Subchannel, Key: e.Key,
			Message: fmt.Sprintf("event %q (seq %d) after destroy", e.Kind, e.Seq),
			Events:  []subconn.Event{e},
		})
		return
	}
	if _, seen := c.destroyed[e.Subchannel]; seen {
		return // already reported
	}
	evs := append(c.open[e.Subchannel], e)
	if e.Kind != subconn.KindDestroy {
		c.open[e.Subchannel] = evs
		return
	}
	delete(c.open, e.Subchannel)
	c.destroyed[e.Subchannel] = true
	c.merge(subconn.CheckTrace(evs))
}

// merge adds r to the running report. Caller must hold c.mu.
func (c *traceChecker) merge(r subconn.Report) {
	c.rep.Subchannels += r.Subchannels
	c.rep.Destroyed += r.Destroyed
	c.rep.Live += r.Live
	c.rep.Problems = append(c.rep.Problems, r.Problems...)
}

// report checks what is still open and returns the report of the whole
// trace so far. It does not change the checker.
func (c *traceChecker) report() subconn.Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := append([]subconn.Event(nil), c.managers...)
	for _, evs := range c.open {
		rest = append(rest, evs...)
	}
	r := subconn.CheckTrace(rest)
	out := c.rep
	out.Problems = append([]subconn.Problem(nil), c.rep.Problems...)
	out.Events = c.events
	out.Subchannels += r.Subchannels
	out.Destroyed += r.Destroyed
	out.Live += r.Live
	out.Problems = append(out.Problems, r.Problems...)
	return out
}
