package admin

import (
	"cmp"
	"slices"

	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
)

// collect reads every manager serving target (every manager if target is
// empty), ordered by id, as the service, the handler and trace.CheckLive
// read them.
func collect(target string) []trace.ManagerState {
	var out []trace.ManagerState
	for _, m := range subconn.Managers() {
		if target != "" && m.Target() != target {
			continue
		}
		out = append(out, m.Inspect())
	}
	return out
}

// collectLive reads what ListSubchannels shows of every manager serving
// target: its counters and subchannels, not its ring (which may hold 2^20
// events the list does not show).
func collectLive(target string) []trace.ManagerState {
	var out []trace.ManagerState
	for _, m := range subconn.Managers() {
		if target != "" && m.Target() != target {
			continue
		}
		closed := m.Closed()
		out = append(out, trace.ManagerState{
			ID: m.ID(), Target: m.Target(), Closed: closed, Stats: m.Stats(), Subchannels: m.Snapshot(),
		})
	}
	return out
}

// allSubchannels returns the subchannels of ms, ordered by id.
func allSubchannels(ms []trace.ManagerState) []trace.Subchannel {
	var out []trace.Subchannel
	for _, m := range ms {
		out = append(out, m.Subchannels...)
	}
	slices.SortFunc(out, func(a, b trace.Subchannel) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// recentEvents returns the latest n events of ms's rings, in seq order.
func recentEvents(ms []trace.ManagerState, n int) []trace.Event {
	var out []trace.Event
	for _, m := range ms {
		out = append(out, m.Events...)
	}
	slices.SortFunc(out, func(a, b trace.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
