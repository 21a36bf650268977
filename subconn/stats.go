package subconn

import (
	"maps"

	"github.com/leakproof/leakproof/trace"
)

// countLoss counts one lost connection of cause c in s.
func countLoss(s *trace.Stats, c trace.Cause) {
	if s.ConnectionsLost == nil {
		s.ConnectionsLost = make(map[trace.Cause]uint64)
	}
	s.ConnectionsLost[c]++
}

// Stats returns a copy of the manager's counters.
func (m *Manager) Stats() trace.Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	if s.ConnectionsLost != nil {
		s.ConnectionsLost = maps.Clone(m.stats.ConnectionsLost)
	}
	return s
}

// Inspect reads m for trace.CheckLive: the ring first, then the closed flag, then
// the snapshot. Whatever the ring shows unfinished is either still in the
// snapshot or has finished in between, so the check never mistakes the gap
// between the two reads for a leak.
func (m *Manager) Inspect() trace.ManagerState {
	ev := m.Trace()
	closed := m.Closed()
	return trace.ManagerState{
		ID:          m.ID(),
		Target:      m.Target(),
		Closed:      closed,
		Stats:       m.Stats(),
		Subchannels: m.Snapshot(),
		Events:      ev,
	}
}
