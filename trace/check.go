package trace

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/leakproof/leakproof/internal/termsafe"
	"github.com/leakproof/leakproof/jsontime"
)

// ProblemKind classifies a Problem.
type ProblemKind string

// The problems Check reports.
const (
	ProblemLeak       ProblemKind = "leak"        // a subchannel that should have been destroyed was not
	ProblemHolderLeak ProblemKind = "holder_leak" // a holder never released; the manager forced it at Close
	ProblemUnbalanced ProblemKind = "unbalanced"  // an unref without a ref, or counts that do not add up
	ProblemInvalid    ProblemKind = "invalid"     // events out of lifecycle order (e.g. a second Shutdown)
	ProblemOrphan     ProblemKind = "orphan"      // an orphan event (in Report.Orphans): a bug in the policy that held the subchannel
)

// The problems CheckLive finds in the managers' state, besides those
// Check finds in their rings.
const (
	ProblemSocketsOpen        ProblemKind = "sockets_open_after_shutdown" // shut down past the grace period, sockets still open
	ProblemNotDestroyed       ProblemKind = "shut_down_not_destroyed"     // shut down past the grace period, no socket, no destroy
	ProblemReleasedNotShut    ProblemKind = "released_not_shut_down"      // every reference released, Shutdown never called
	ProblemClosedManagerAlive ProblemKind = "closed_manager_subchannel"   // the manager closed, the subchannel never shut down
)

// A Problem is a leak or inconsistency found in a trace, with the events
// that show it.
type Problem struct {
	Kind       ProblemKind `json:"kind"`
	Manager    uint64      `json:"manager"`
	Target     string      `json:"target,omitempty"`
	Subchannel uint64      `json:"subchannel"`
	Key        string      `json:"key"`
	Message    string      `json:"message"`
	// SinceShutdown is how long ago the subchannel was shut down, for the
	// live problems of a shut-down subchannel (CheckLive).
	SinceShutdown jsontime.Duration `json:"since_shutdown,omitempty"`
	Events        []Event           `json:"events"`
}

// String renders p on one line, without its events. Its key is quoted and
// its message's control characters escaped, as in Event.String.
func (p Problem) String() string {
	return fmt.Sprintf("%s: subchannel #%d %s (manager %d): %s", p.Kind, p.Subchannel, termsafe.Quote(p.Key), p.Manager, termsafe.Escape(p.Message))
}

// A Report is the result of checking a trace.
type Report struct {
	Events      int       `json:"events"`
	Subchannels int       `json:"subchannels"` // subchannels seen
	Destroyed   int       `json:"destroyed"`
	Live        int       `json:"live"` // held by an open manager at the end: not a leak
	Problems    []Problem `json:"problems"`
	// Orphans are the orphan events (ProblemOrphan): references a policy
	// still held after their address left the resolver state. Each names a
	// bug in that policy, which the manager caught; they are not leaks of
	// the trace and leave Clean unchanged.
	Orphans []Problem `json:"orphans,omitempty"`
}

// Clean reports whether the trace shows no problem.
func (r Report) Clean() bool { return len(r.Problems) == 0 }

// evidenceCap bounds the events attached to a problem as evidence: the
// first half (create, first refs) and the latest half of the subchannel's
// lifecycle events.
const evidenceCap = 24

// isEvidence reports whether e shows ownership. State changes and connects
// do not, and are too frequent to keep.
func isEvidence(e Event) bool { return e.Kind != KindState && e.Kind != KindConnect }

// evidence returns the lifecycle events of subchannel id in events, capped
// like scReplay.note caps them.
func evidence(events []Event, id uint64) []Event {
	var out []Event
	for _, e := range events {
		if e.Subchannel == id && isEvidence(e) {
			out = append(out, e)
		}
	}
	return capEvidence(out)
}

// evidenceByID returns the lifecycle events of every subchannel in events,
// by subchannel id, in one pass: CheckLive attaches evidence to any number
// of problems of one ring without scanning the ring once per problem.
func evidenceByID(events []Event) map[uint64][]Event {
	out := map[uint64][]Event{}
	for _, e := range events {
		if e.Subchannel != 0 && isEvidence(e) {
			out[e.Subchannel] = append(out[e.Subchannel], e)
		}
	}
	return out
}

// capEvidence keeps the first and the latest evidenceCap/2 events of out.
func capEvidence(out []Event) []Event {
	if len(out) > evidenceCap {
		out = append(out[:evidenceCap/2:evidenceCap/2], out[len(out)-evidenceCap/2:]...)
	}
	return out
}

type scReplay struct {
	id, manager   uint64
	key, target   string
	created       bool
	refs          int
	holders       map[string]int
	shutdowns     int
	destroyed     bool
	sockets       map[uint64]Event // open sockets by id
	history       []Event          // lifecycle events, capped
	sawRefs       bool
	reportedAfter bool
}

func (s *scReplay) note(e Event) {
	if len(s.history) == evidenceCap {
		// Keep the first events (create, first refs) and the latest.
		copy(s.history[evidenceCap/2:], s.history[evidenceCap/2+1:])
		s.history = s.history[:evidenceCap-1]
	}
	s.history = append(s.history, e)
}

// Check replays a trace and names every leaked subchannel and every
// unbalanced reference, with the events that show it. A subchannel is leaked
// if it has no destroy after its last reference was dropped, after Shutdown,
// or after its manager closed. Subchannels still held by a manager that had
// not closed when the trace ends are live, not leaked. A trace that starts
// mid-life (no create) is checked from its first event.
func Check(events []Event) Report {
	events = slices.Clone(events)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Seq < events[j].Seq })
	rep := Report{Events: len(events)}
	scs := map[uint64]*scReplay{}
	var order []uint64
	closedManagers := map[uint64]bool{}
	problem := func(s *scReplay, kind ProblemKind, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{
			Kind: kind, Manager: s.manager, Target: s.target, Subchannel: s.id, Key: s.key,
			Message: fmt.Sprintf(format, args...), Events: slices.Clone(s.history),
		})
	}
	for _, e := range events {
		switch e.Kind {
		case KindManagerClose:
			closedManagers[e.Manager] = true
			continue
		case KindManagerOpen:
			continue
		}
		if e.Subchannel == 0 {
			continue
		}
		s := scs[e.Subchannel]
		if s == nil {
			s = &scReplay{id: e.Subchannel, manager: e.Manager, key: e.Key, target: e.Target, holders: map[string]int{}, sockets: map[uint64]Event{}, refs: e.RefsBefore}
			scs[e.Subchannel] = s
			order = append(order, e.Subchannel)
		}
		if isEvidence(e) {
			s.note(e)
		}
		if s.destroyed {
			if !s.reportedAfter {
				s.reportedAfter = true
				problem(s, ProblemInvalid, "event %q (seq %d) after destroy", e.Kind, e.Seq)
			}
			continue
		}
		switch e.Kind {
		case KindCreate:
			s.created = true
			s.refs = 0
		case KindRef:
			if e.RefsBefore != s.refs {
				problem(s, ProblemUnbalanced, "ref by %q says refs %d->%d, but the trace counts %d (seq %d)", e.Holder, e.RefsBefore, e.RefsAfter, s.refs, e.Seq)
			}
			s.refs++
			s.sawRefs = true
			s.holders[e.Holder]++
		case KindUnref, KindLeak:
			switch {
			case s.refs <= 0:
				problem(s, ProblemUnbalanced, "unref by %q without a reference (seq %d)", e.Holder, e.Seq)
			case s.created && s.holders[e.Holder] <= 0:
				problem(s, ProblemUnbalanced, "unref by %q, which held no reference (seq %d)", e.Holder, e.Seq)
			}
			if s.refs > 0 {
				s.refs--
			}
			if s.holders[e.Holder] > 0 {
				s.holders[e.Holder]--
			}
			s.sawRefs = true
			if e.Kind == KindLeak {
				problem(s, ProblemHolderLeak, "holder %q never released its reference; the manager dropped it at Close (seq %d)", e.Holder, e.Seq)
			}
		case KindShutdown:
			s.shutdowns++
			if s.shutdowns > 1 {
				problem(s, ProblemInvalid, "Shutdown recorded %d times (seq %d)", s.shutdowns, e.Seq)
			}
			if s.refs != 0 {
				problem(s, ProblemUnbalanced, "Shutdown with %d reference(s) still counted (seq %d)", s.refs, e.Seq)
			}
		case KindOrphan:
			rep.Orphans = append(rep.Orphans, Problem{
				Kind: ProblemOrphan, Manager: s.manager, Target: s.target, Subchannel: s.id, Key: s.key,
				Message: fmt.Sprintf("holder %q forgot it: %s (seq %d)", e.Holder, e.Reason, e.Seq), Events: slices.Clone(s.history),
			})
		case KindSocketOpen:
			if e.Socket != nil {
				s.sockets[e.Socket.ID] = e
			}
		case KindSocketClose:
			if e.Socket != nil {
				delete(s.sockets, e.Socket.ID)
			}
		case KindDestroy:
			s.destroyed = true
			rep.Destroyed++
			if s.shutdowns == 0 && s.created {
				problem(s, ProblemInvalid, "destroy without Shutdown (seq %d)", e.Seq)
			}
			if len(s.sockets) > 0 {
				problem(s, ProblemLeak, "destroy with %d socket(s) still open: %s", len(s.sockets), socketList(time.Time{}, openSockets(s.sockets)))
			}
		}
	}
	rep.Subchannels = len(scs)
	for _, id := range order {
		s := scs[id]
		if s.destroyed {
			continue
		}
		switch {
		case s.shutdowns > 0 && len(s.sockets) > 0:
			problem(s, ProblemLeak, "shut down but never destroyed: %d socket(s) still open: %s", len(s.sockets), socketList(time.Time{}, openSockets(s.sockets)))
		case s.shutdowns > 0:
			problem(s, ProblemLeak, "shut down but never destroyed")
		case s.sawRefs && s.refs == 0:
			problem(s, ProblemLeak, "every reference released but Shutdown never called")
		case closedManagers[s.manager]:
			problem(s, ProblemLeak, "manager %d closed but the subchannel was never shut down (refs %d)", s.manager, s.refs)
		default:
			rep.Live++
		}
	}
	return rep
}

// openSockets lists the sockets of socket_open events by id.
func openSockets(m map[uint64]Event) []Socket {
	out := make([]Socket, 0, len(m))
	for _, e := range m {
		out = append(out, Socket{ID: e.Socket.ID, Local: e.Socket.Local, Remote: e.Socket.Remote, Opened: e.Time})
	}
	slices.SortFunc(out, func(a, b Socket) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// socketList names sockets as evidence: "socket 3 local->remote", with how
// long each has been open at now unless now is zero, and "(goaway)" if the
// server sent GOAWAY on it.
func socketList(now time.Time, socks []Socket) string {
	parts := make([]string, 0, len(socks))
	for _, s := range socks {
		p := fmt.Sprintf("socket %d %s->%s", s.ID, s.Local, s.Remote)
		if !now.IsZero() {
			p += fmt.Sprintf(" open %v", now.Sub(s.Opened).Round(time.Millisecond))
		}
		if s.GoAway {
			p += " (goaway)"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
