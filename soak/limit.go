package soak

import (
	"fmt"
	"time"
)

// limitWatch checks the sockets per backend outside drain windows. Guarded
// by r.mu.
type limitWatch struct {
	// drainWindows are the GOAWAY drain windows.
	drainWindows []timeWindow
	// streak counts consecutive samples over the socket limit per backend.
	streak map[string]int
	// limitFailures are the main channel's sockets over Config.SocketLimit
	// (each channel under test keeps its own most, underTest.limit).
	limitFailures []string
}

type timeWindow struct{ from, to time.Time }

// drainingLocked reports whether now is in a GOAWAY drain window, where a
// backend may hold a draining socket beside a new one. Caller must hold
// r.mu.
func (r *runner) drainingLocked(now time.Time) bool {
	for _, w := range r.drainWindows {
		if !now.Before(w.from) && !now.After(w.to) {
			return true
		}
	}
	p := r.cur
	return p != nil && p.Fault == FaultGoAway
}

// checkLimit records each channel under test's most sockets to one
// backend outside the drain windows, and checks the main channel's against
// the limit; two samples in a row over it are a failure. Caller must hold
// r.mu.
func (r *runner) checkLimit(now time.Time, s Sample) {
	drain := r.drainingLocked(now)
	bound := r.cfg.bound()
	excused := func(name string) bool {
		t, ok := r.lastGone[name]
		return drain || (ok && now.Sub(t) <= bound)
	}
	where := func(name string) string {
		w := fmt.Sprintf("%s at %.1fs", name, time.Duration(s.At).Seconds())
		if s.Phase != "" {
			w += " (" + string(s.Phase) + ")"
		}
		return w
	}
	for _, ut := range r.chans {
		for name, n := range ut.sockets(s) {
			if excused(name) {
				if !ut.info {
					r.streak[name] = 0
				}
				continue
			}
			ut.limit.note(n, func() string { return where(name) })
			if ut.info {
				continue // the comparison channel's sockets are not judged
			}
			if r.cfg.SocketLimit <= 0 || n <= r.cfg.SocketLimit {
				r.streak[name] = 0
				continue
			}
			r.streak[name]++
			if r.streak[name] == 2 && len(r.limitFailures) < 10 {
				r.limitFailures = append(r.limitFailures, fmt.Sprintf("%d sockets to %s", n, where(name)))
			}
		}
	}
}
