package subconn

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ManagerState is one manager as the live check reads it: its recent
// events, whether it is closed, its counters and its subchannels.
type ManagerState struct {
	ID          uint64
	Target      string
	Closed      bool
	Stats       Stats
	Subchannels []SubchannelInfo
	Events      []Event // the manager's ring, oldest first
}

// Inspect reads m for CheckLive: the ring first, then the closed flag, then
// the snapshot. Whatever the ring shows unfinished is either still in the
// snapshot or has finished in between, so the check never mistakes the gap
// between the two reads for a leak.
func (m *Manager) Inspect() ManagerState {
	ev := m.Trace()
	closed := m.Closed()
	return ManagerState{
		ID:          m.ID(),
		Target:      m.Target(),
		Closed:      closed,
		Stats:       m.Stats(),
		Subchannels: m.Snapshot(),
		Events:      ev,
	}
}

// A LiveReport is the result of CheckLive.
type LiveReport struct {
	Problems      []Problem `json:"problems"`
	Subchannels   int       `json:"subchannels"`    // subchannels in the snapshots
	Draining      int       `json:"draining"`       // shut down less than the grace period ago
	EventsChecked int       `json:"events_checked"` // events in the rings
	GracePeriod   Duration  `json:"grace_period"`
}

// CheckLive is the leak check over running managers, read with Inspect, at
// time now. Sockets of a shut-down subchannel may stay open for grace
// (draining their last streams) before they count as leaked.
//
// It reports, from the managers' state: subchannels shut down whose sockets
// are still open after grace (or that were never destroyed), subchannels
// released to zero but never shut down, and subchannels of closed managers
// never shut down. From the rings, replayed by CheckTrace: unbalanced
// references, holders the manager had to release at Close, lifecycle events
// out of order, and subchannels destroyed with sockets open. A ring holds the
// latest events only; CheckTrace checks a subchannel whose create the ring
// dropped from its first event on, and the end-of-trace verdicts ("never
// destroyed") are left to the live state, which is exact, so a partial
// history yields no false positive.
func CheckLive(now time.Time, grace time.Duration, ms []ManagerState) LiveReport {
	res := LiveReport{GracePeriod: Duration(grace), Problems: []Problem{}}
	for _, m := range ms {
		res.EventsChecked += len(m.Events)
		res.Subchannels += len(m.Subchannels)
		add := func(si SubchannelInfo, kind ProblemKind, since time.Duration, format string, args ...any) {
			res.Problems = append(res.Problems, Problem{
				Kind: kind, Manager: m.ID, Target: m.Target, Subchannel: si.ID, Key: si.Key,
				Message: fmt.Sprintf(format, args...), SinceShutdown: Duration(since),
				Events: evidence(m.Events, si.ID),
			})
		}
		for _, si := range m.Subchannels {
			switch {
			case si.Shutdown:
				since := now.Sub(si.ShutdownAt)
				if since < grace {
					res.Draining++
					continue
				}
				closed := ""
				if m.Closed {
					closed = fmt.Sprintf("; manager %d is closed", m.ID)
				}
				if len(si.Sockets) > 0 {
					add(si, ProblemSocketsOpen, since, "shut down %v ago, %d socket(s) still open: %s%s",
						since.Round(time.Millisecond), len(si.Sockets), socketList(now, si.Sockets), closed)
					continue
				}
				add(si, ProblemNotDestroyed, since, "shut down %v ago, no socket open (%d dial(s) in flight), never destroyed%s",
					since.Round(time.Millisecond), si.Dialing, closed)
			case si.Refs <= 0:
				add(si, ProblemReleasedNotShut, 0, "every reference released (refs %d) but Shutdown never called", si.Refs)
			case m.Closed:
				add(si, ProblemClosedManagerAlive, 0, "manager %d closed but the subchannel was never shut down (refs %d, held by %s)",
					m.ID, si.Refs, strings.Join(si.Holders, ", "))
			}
		}
		destroyed := map[uint64]bool{}
		for _, e := range m.Events {
			if e.Kind == KindDestroy {
				destroyed[e.Subchannel] = true
			}
		}
		for _, p := range CheckTrace(m.Events).Problems {
			// A leak verdict on a subchannel the ring never saw destroyed is
			// an end-of-trace verdict: the live state above decides it.
			if p.Kind == ProblemLeak && !destroyed[p.Subchannel] {
				continue
			}
			p.Manager, p.Target = m.ID, m.Target
			res.Problems = append(res.Problems, p)
		}
	}
	slices.SortStableFunc(res.Problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Manager, b.Manager), cmp.Compare(a.Subchannel, b.Subchannel))
	})
	return res
}
