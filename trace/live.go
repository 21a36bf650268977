package trace

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/jsontime"
)

// ManagerState is one manager as the live check reads it: its recent
// events, whether it is closed, its counters and its subchannels.
type ManagerState struct {
	ID          uint64
	Target      string
	Closed      bool
	Stats       Stats
	Subchannels []Subchannel
	Events      []Event // the manager's ring, oldest first
}

// A LiveReport is the result of CheckLive.
type LiveReport struct {
	Problems      []Problem         `json:"problems"`
	Subchannels   int               `json:"subchannels"`    // subchannels in the snapshots
	Draining      int               `json:"draining"`       // shut down less than the grace period ago
	EventsChecked int               `json:"events_checked"` // events in the rings
	GracePeriod   jsontime.Duration `json:"grace_period"`
}

// CheckLive is the leak check over running managers, read with Inspect, at
// time now. Sockets of a shut-down subchannel may stay open for grace
// (draining their last streams) before they count as leaked.
//
// It reports, from the managers' state: subchannels shut down whose sockets
// are still open after grace (or that were never destroyed), subchannels
// released to zero but never shut down, and subchannels of closed managers
// never shut down. From the rings, replayed by Check: unbalanced
// references, holders the manager had to release at Close, orphans (a child
// policy under leakproof_guard held a subchannel after its address left the
// resolver state), lifecycle events out of order, and subchannels destroyed
// with sockets open. A ring holds the
// latest events only; Check checks a subchannel whose create the ring
// dropped from its first event on, and the end-of-trace verdicts ("never
// destroyed") are left to the live state, which is exact, so a partial
// history yields no false positive.
func CheckLive(now time.Time, grace time.Duration, ms []ManagerState) LiveReport {
	res := LiveReport{GracePeriod: jsontime.Duration(grace), Problems: []Problem{}}
	for _, m := range ms {
		res.EventsChecked += len(m.Events)
		res.Subchannels += len(m.Subchannels)
		var byID map[uint64][]Event // the ring's evidence per subchannel, indexed at the first problem
		add := func(si Subchannel, kind ProblemKind, since time.Duration, format string, args ...any) {
			if byID == nil {
				byID = evidenceByID(m.Events)
			}
			res.Problems = append(res.Problems, Problem{
				Kind: kind, Manager: m.ID, Target: m.Target, Subchannel: si.ID, Key: si.Key,
				Message: fmt.Sprintf(format, args...), SinceShutdown: jsontime.Duration(since),
				Events: capEvidence(byID[si.ID]),
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
		rep := Check(m.Events)
		for _, p := range rep.Orphans { // a child policy's bug, caught by the manager
			p.Manager, p.Target = m.ID, m.Target
			res.Problems = append(res.Problems, p)
		}
		for _, p := range rep.Problems {
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

// Subchannel describes one subchannel that has not been destroyed.
type Subchannel struct {
	ID              uint64            `json:"id"`
	Manager         uint64            `json:"manager"`
	Target          string            `json:"target"`
	Key             string            `json:"key"`
	State           string            `json:"state"`
	Refs            int               `json:"refs"`
	Holders         []string          `json:"holders"` // one entry per reference
	Sockets         []Socket          `json:"sockets"`
	Dialing         int               `json:"dialing,omitempty"`
	Created         time.Time         `json:"created"`
	Age             jsontime.Duration `json:"age"`
	Shutdown        bool              `json:"shutdown"`
	ShutdownAt      time.Time         `json:"shutdown_at,omitzero"`
	ConnectionsLost int               `json:"connections_lost"`
	LastLoss        string            `json:"last_loss,omitempty"`
}

// Socket describes one socket a subchannel owns.
type Socket struct {
	ID     uint64    `json:"id"`
	Local  string    `json:"local"`
	Remote string    `json:"remote"`
	Opened time.Time `json:"opened"`
	GoAway bool      `json:"goaway,omitempty"` // the server sent GOAWAY on it
}

// Stats counts what a manager has done since it was built.
type Stats struct {
	Created         uint64           // subchannels created (NewSubConn)
	Shutdowns       uint64           // Shutdown calls (one per subchannel)
	Destroyed       uint64           // subchannels fully released (destroy)
	Refs            uint64           // references taken
	Unrefs          uint64           // references dropped (including leaks)
	Leaks           uint64           // references force-dropped by Close
	SocketsOpened   uint64           // sockets opened through Dialer
	SocketsClosed   uint64           // sockets closed
	DrainTimeouts   uint64           // subchannels whose sockets were force-closed
	Orphans         uint64           // references held after their address left the resolver state
	ConnectionsLost map[Cause]uint64 // READY→IDLE transitions by cause
}
