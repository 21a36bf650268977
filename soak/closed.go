package soak

import (
	"fmt"
	"strings"
	"time"
)

// closedWatch follows closed channels until their sockets are gone.
// Guarded by r.mu.
type closedWatch struct {
	closing        []*closedCheck
	closedOK       int
	closedFailed   int
	closedFailures []string // the first maxListed
}

type closedCheck struct {
	ch *chanRec
	at time.Time
}

// checkClosed concludes the checks of closed channels. Caller must hold r.mu.
func (r *runner) checkClosed(now time.Time, sc *socketCount) {
	bound := r.cfg.bound()
	keep := r.closing[:0]
	for _, c := range r.closing {
		n := 0
		var where []string
		for name, k := range sc.byChan[c.ch.id] {
			n += k
			where = append(where, fmt.Sprintf("%s:%d", name, k))
		}
		switch {
		case n == 0:
			r.closedOK++
			r.socks.forget(c.ch)
		case now.Sub(c.at) > bound:
			r.closedFailed++
			r.listClosedFailure(fmt.Sprintf("channel %s: %d socket(s) (%s) still open %v after Close", c.ch.name, n, strings.Join(where, " "), now.Sub(c.at).Round(time.Millisecond)))
		default:
			keep = append(keep, c)
		}
	}
	clear(r.closing[len(keep):])
	r.closing = keep
}

// listClosedFailure keeps the first failures of closed channels. Caller
// must hold r.mu.
func (r *runner) listClosedFailure(msg string) {
	if len(r.closedFailures) < maxListed {
		r.closedFailures = append(r.closedFailures, msg)
	}
}
