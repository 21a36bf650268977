package subconn

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/trace"
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

// Snapshot describes, ordered by id, every subchannel of the manager that
// has not been destroyed: held ones, and shut-down ones whose sockets are
// still open.
func (m *Manager) Snapshot() []trace.Subchannel {
	now := time.Now()
	m.mu.Lock()
	out := make([]trace.Subchannel, 0, m.undestroyed)
	add := func(r *record) {
		cold := r.coldOrZeroLocked()
		si := trace.Subchannel{
			ID:              r.id,
			Manager:         m.id,
			Target:          m.target,
			Key:             r.key(),
			State:           r.stateLocked().String(),
			Refs:            int(r.refs),
			Holders:         make([]string, 0, r.refs),
			Sockets:         make([]trace.Socket, 0, len(cold.sockets)),
			Dialing:         int(cold.dialing),
			Created:         m.at(r.created),
			Age:             jsontime.Duration(now.Sub(m.at(r.created))),
			Shutdown:        r.shutdown,
			ConnectionsLost: int(cold.lost),
			LastLoss:        cold.lastLoss,
		}
		if r.shutdown {
			si.ShutdownAt = m.at(cold.shutdownAt)
		}
		for h := r.holders; h != nil; h = h.next {
			si.Holders = append(si.Holders, h.holder)
		}
		for _, c := range cold.sockets {
			si.Sockets = append(si.Sockets, trace.Socket{ID: c.id, Local: c.local, Remote: c.remote, Opened: c.opened, GoAway: c.goaway.Load()})
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
	slices.SortFunc(out, func(a, b trace.Subchannel) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Closed reports whether Close has been called. admin lists subchannels
// with it and Snapshot, without the copy of the ring Inspect makes.
func (m *Manager) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}
