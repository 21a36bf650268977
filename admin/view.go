package admin

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/subconn"
)

// managerView is one manager as the service, the handler and the leak check
// read it.
type managerView struct {
	id          uint64
	target      string
	closed      bool
	stats       subconn.Stats
	subchannels []subconn.SubchannelInfo
	events      []subconn.Event // the manager's ring, oldest first
}

// collect reads every manager serving target (every manager if target is
// empty), ordered by id.
func collect(target string) []managerView {
	var out []managerView
	for _, m := range subconn.Managers() {
		if target != "" && m.Target() != target {
			continue
		}
		// The ring first, then the closed flag, then the snapshot: whatever
		// the ring shows unfinished is either still in the snapshot or has
		// finished in between, so the check never mistakes the gap between
		// the two reads for a leak.
		ev := m.Trace()
		closed := m.Closed()
		out = append(out, managerView{
			id:          m.ID(),
			target:      m.Target(),
			closed:      closed,
			stats:       m.Stats(),
			subchannels: m.Snapshot(),
			events:      ev,
		})
	}
	return out
}

// allSubchannels returns the subchannels of ms, ordered by id.
func allSubchannels(ms []managerView) []subconn.SubchannelInfo {
	var out []subconn.SubchannelInfo
	for _, m := range ms {
		out = append(out, m.subchannels...)
	}
	slices.SortFunc(out, func(a, b subconn.SubchannelInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// recentEvents returns the latest n events of ms's rings, in seq order.
func recentEvents(ms []managerView, n int) []subconn.Event {
	var out []subconn.Event
	for _, m := range ms {
		out = append(out, m.events...)
	}
	slices.SortFunc(out, func(a, b subconn.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// The kinds of problems the live check finds in the managers' state, besides
// those subconn.CheckTrace finds in their rings.
const (
	problemSocketsOpen        = "sockets_open_after_shutdown"
	problemNotDestroyed       = "shut_down_not_destroyed"
	problemReleasedNotShut    = "released_not_shut_down"
	problemClosedManagerAlive = "closed_manager_subchannel"
)

// A problem is one finding of the live leak check.
type problem struct {
	Kind          string           `json:"kind"`
	Manager       uint64           `json:"manager"`
	Target        string           `json:"target"`
	Subchannel    uint64           `json:"subchannel"`
	Key           string           `json:"key"`
	Message       string           `json:"message"`
	SinceShutdown subconn.Duration `json:"since_shutdown,omitempty"`
	Events        []subconn.Event  `json:"events"`
}

// checkResult is the outcome of the live leak check.
type checkResult struct {
	Problems      []problem        `json:"problems"`
	Subchannels   int              `json:"subchannels"`
	Draining      int              `json:"draining"`
	EventsChecked int              `json:"events_checked"`
	GracePeriod   subconn.Duration `json:"grace_period"`
}

// evidenceCap bounds the events attached to one problem: the first half and
// the latest half of the subchannel's lifecycle events.
const evidenceCap = 24

// evidence returns the lifecycle events of subchannel id in events (state
// changes and connects left out: they are frequent and show no ownership).
func evidence(events []subconn.Event, id uint64) []subconn.Event {
	var out []subconn.Event
	for _, e := range events {
		if e.Subchannel != id || e.Kind == subconn.KindState || e.Kind == subconn.KindConnect {
			continue
		}
		out = append(out, e)
	}
	if len(out) > evidenceCap {
		out = append(out[:evidenceCap/2:evidenceCap/2], out[len(out)-evidenceCap/2:]...)
	}
	return out
}

// check is the live leak check over ms at time now. Sockets of a shut-down
// subchannel may stay open for grace (draining their last streams) before
// they count as leaked.
//
// It reports, from the managers' state: subchannels shut down whose sockets
// are still open after grace (or that were never destroyed), subchannels
// released to zero but never shut down, and subchannels of closed managers
// never shut down. From the rings, replayed by subconn.CheckTrace: unbalanced
// references, holders the manager had to release at Close, orphans (a
// child policy held a subchannel after its address left the resolver
// state), lifecycle events out of order, and subchannels destroyed with
// sockets open. A ring holds the
// latest events only; CheckTrace checks a subchannel whose create the ring
// dropped from its first event on, and the end-of-trace verdicts ("never
// destroyed") are left to the live state, which is exact, so a partial
// history yields no false positive.
func check(now time.Time, grace time.Duration, ms []managerView) checkResult {
	res := checkResult{GracePeriod: subconn.Duration(grace), Problems: []problem{}}
	for _, m := range ms {
		res.EventsChecked += len(m.events)
		res.Subchannels += len(m.subchannels)
		add := func(si subconn.SubchannelInfo, kind string, since time.Duration, format string, args ...any) {
			res.Problems = append(res.Problems, problem{
				Kind: kind, Manager: m.id, Target: m.target, Subchannel: si.ID, Key: si.Key,
				Message: fmt.Sprintf(format, args...), SinceShutdown: subconn.Duration(since),
				Events: evidence(m.events, si.ID),
			})
		}
		for _, si := range m.subchannels {
			switch {
			case si.Shutdown:
				since := now.Sub(si.ShutdownAt)
				if since < grace {
					res.Draining++
					continue
				}
				closed := ""
				if m.closed {
					closed = fmt.Sprintf("; manager %d is closed", m.id)
				}
				if len(si.Sockets) > 0 {
					add(si, problemSocketsOpen, since, "shut down %v ago, %d socket(s) still open: %s%s",
						since.Round(time.Millisecond), len(si.Sockets), socketList(now, si.Sockets), closed)
					continue
				}
				add(si, problemNotDestroyed, since, "shut down %v ago, no socket open (%d dial(s) in flight), never destroyed%s",
					since.Round(time.Millisecond), si.Dialing, closed)
			case si.Refs <= 0:
				add(si, problemReleasedNotShut, 0, "every reference released (refs %d) but Shutdown never called", si.Refs)
			case m.closed:
				add(si, problemClosedManagerAlive, 0, "manager %d closed but the subchannel was never shut down (refs %d, held by %s)",
					m.id, si.Refs, strings.Join(si.Holders, ", "))
			}
		}
		destroyed := map[uint64]bool{}
		for _, e := range m.events {
			if e.Kind == subconn.KindDestroy {
				destroyed[e.Subchannel] = true
			}
		}
		rep := subconn.CheckTrace(m.events)
		for _, p := range rep.Orphans { // a child policy's bug, caught by the manager
			res.Problems = append(res.Problems, problem{
				Kind: string(p.Kind), Manager: m.id, Target: m.target, Subchannel: p.Subchannel, Key: p.Key,
				Message: p.Message, Events: p.Events,
			})
		}
		for _, p := range rep.Problems {
			// A leak verdict on a subchannel the ring never saw destroyed is
			// an end-of-trace verdict: the live state above decides it.
			if p.Kind == subconn.ProblemLeak && !destroyed[p.Subchannel] {
				continue
			}
			res.Problems = append(res.Problems, problem{
				Kind: string(p.Kind), Manager: m.id, Target: m.target, Subchannel: p.Subchannel, Key: p.Key,
				Message: p.Message, Events: p.Events,
			})
		}
	}
	slices.SortStableFunc(res.Problems, func(a, b problem) int {
		return cmp.Or(cmp.Compare(a.Manager, b.Manager), cmp.Compare(a.Subchannel, b.Subchannel))
	})
	return res
}

func socketList(now time.Time, socks []subconn.SocketInfo) string {
	parts := make([]string, 0, len(socks))
	for _, s := range socks {
		p := fmt.Sprintf("socket %d %s->%s open %v", s.ID, s.Local, s.Remote, now.Sub(s.Opened).Round(time.Millisecond))
		if s.GoAway {
			p += " (goaway)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
