package admin

import (
	"cmp"
	"slices"

	"github.com/leakproof/leakproof/subconn"
)

// collect reads every manager serving target (every manager if target is
// empty), ordered by id, as the service, the handler and subconn.CheckLive
// read them.
func collect(target string) []subconn.ManagerState {
	var out []subconn.ManagerState
	for _, m := range subconn.Managers() {
		if target != "" && m.Target() != target {
			continue
		}
		out = append(out, m.Inspect())
	}
	return out
}

// allSubchannels returns the subchannels of ms, ordered by id.
func allSubchannels(ms []subconn.ManagerState) []subconn.SubchannelInfo {
	var out []subconn.SubchannelInfo
	for _, m := range ms {
		out = append(out, m.Subchannels...)
	}
	slices.SortFunc(out, func(a, b subconn.SubchannelInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// recentEvents returns the latest n events of ms's rings, in seq order.
func recentEvents(ms []subconn.ManagerState, n int) []subconn.Event {
	var out []subconn.Event
	for _, m := range ms {
		out = append(out, m.Events...)
	}
	slices.SortFunc(out, func(a, b subconn.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
