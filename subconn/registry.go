package subconn

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// The process-wide registry of managers: a manager appears when built and
// disappears once it is closed and every one of its subchannels is destroyed
// (so a closed manager whose sockets are still draining stays visible).
var registry struct {
	mu       sync.Mutex
	managers map[uint64]*Manager
}

func register(m *Manager) {
	registry.mu.Lock()
	if registry.managers == nil {
		registry.managers = make(map[uint64]*Manager)
	}
	registry.managers[m.id] = m
	registry.mu.Unlock()
}

func unregister(m *Manager) {
	registry.mu.Lock()
	delete(registry.managers, m.id)
	registry.mu.Unlock()
}

// Managers returns every manager in the process that is open or still has
// subchannels draining, ordered by id.
func Managers() []*Manager {
	registry.mu.Lock()
	out := make([]*Manager, 0, len(registry.managers))
	for _, m := range registry.managers {
		out = append(out, m)
	}
	registry.mu.Unlock()
	slices.SortFunc(out, func(a, b *Manager) int { return cmp.Compare(a.id, b.id) })
	return out
}

// SubchannelInfo describes one subchannel that has not been destroyed.
type SubchannelInfo struct {
	ID              uint64       `json:"id"`
	Manager         uint64       `json:"manager"`
	Target          string       `json:"target"`
	Key             string       `json:"key"`
	State           string       `json:"state"`
	Refs            int          `json:"refs"`
	Holders         []string     `json:"holders"` // one entry per reference
	Sockets         []SocketInfo `json:"sockets"`
	Dialing         int          `json:"dialing,omitempty"`
	Created         time.Time    `json:"created"`
	Age             Duration     `json:"age"`
	Shutdown        bool         `json:"shutdown"`
	ShutdownAt      time.Time    `json:"shutdown_at,omitzero"`
	ConnectionsLost int          `json:"connections_lost"`
	LastLoss        string       `json:"last_loss,omitempty"`
}

// SocketInfo describes one socket a subchannel owns.
type SocketInfo struct {
	ID     uint64    `json:"id"`
	Local  string    `json:"local"`
	Remote string    `json:"remote"`
	Opened time.Time `json:"opened"`
	GoAway bool      `json:"goaway,omitempty"` // the server sent GOAWAY on it
}

// Duration is a time.Duration that marshals to JSON as a string ("1.5s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Snapshot describes every subchannel of the manager that has not been
// destroyed: held ones, and shut-down ones whose sockets are still open.
// Ordered by id.
func (m *Manager) Snapshot() []SubchannelInfo {
	now := time.Now()
	m.mu.Lock()
	out := make([]SubchannelInfo, 0, m.undestroyed)
	add := func(r *record) {
		cold := r.coldOrZeroLocked()
		si := SubchannelInfo{
			ID:              r.id,
			Manager:         m.id,
			Target:          m.target,
			Key:             r.key(),
			State:           r.stateLocked().String(),
			Refs:            int(r.refs),
			Holders:         make([]string, 0, r.refs),
			Sockets:         make([]SocketInfo, 0, len(cold.sockets)),
			Dialing:         cold.dialing,
			Created:         m.at(r.created),
			Age:             Duration(now.Sub(m.at(r.created))),
			Shutdown:        r.shutdown,
			ConnectionsLost: cold.lost,
			LastLoss:        cold.lastLoss,
		}
		if r.shutdown {
			si.ShutdownAt = m.at(cold.shutdownAt)
		}
		for h := r.holders; h != nil; h = h.next {
			si.Holders = append(si.Holders, h.holder)
		}
		for _, c := range cold.sockets {
			si.Sockets = append(si.Sockets, SocketInfo{ID: c.id, Local: c.local, Remote: c.remote, Opened: c.opened, GoAway: c.goaway.Load()})
		}
		out = append(out, si)
	}
	m.live.all(func(r *record) {
		if r.made && !r.destroyedLocked() { // created, and not destroyed before Shutdown returned
			add(r)
		}
	})
	for r := range m.draining {
		add(r)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b SubchannelInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Closed reports whether Close has been called.
func (m *Manager) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// ManagersCreated returns how many managers this process has built so far,
// closed ones included: a test can tell whether a channel's policy ran on
// leakproof at all.
func ManagersCreated() uint64 { return nextManagerID.Load() }
