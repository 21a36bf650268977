package subconn

import "maps"

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

func (s *Stats) countLoss(c Cause) {
	if s.ConnectionsLost == nil {
		s.ConnectionsLost = make(map[Cause]uint64)
	}
	s.ConnectionsLost[c]++
}

// Stats returns a copy of the manager's counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	if s.ConnectionsLost != nil {
		s.ConnectionsLost = maps.Clone(m.stats.ConnectionsLost)
	}
	return s
}
