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
func (m *Manager) Snapshot() []trace.Subchannel { return m.SnapshotPage(0, -1) }

// SnapshotPage is Snapshot of the first limit subchannels (all if limit <
// 0) whose ids are above after: a page of a listing. It describes only the
// subchannels it returns; the others cost one pointer each while it picks.
func (m *Manager) SnapshotPage(after uint64, limit int) []trace.Subchannel {
	now := time.Now()
	m.mu.Lock()
	var picked []*record
	if limit < 0 {
		picked = make([]*record, 0, m.undestroyed)
	}
	pick := func(r *record) {
		if r.id > after {
			picked = append(picked, r)
		}
	}
	m.live.all(func(r *record) {
		if r.made && !r.destroyedLocked() { // created, and not destroyed before Shutdown returned
			pick(r)
		}
	})
	for r := range m.draining {
		pick(r)
	}
	if limit >= 0 && len(picked) > limit {
		slices.SortFunc(picked, func(a, b *record) int { return cmp.Compare(a.id, b.id) })
		picked = picked[:limit]
	}
	out := make([]trace.Subchannel, 0, len(picked))
	for _, r := range picked {
		out = append(out, m.describeLocked(r, now))
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b trace.Subchannel) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// describeLocked describes r as Snapshot does. Caller must hold m.mu.
func (m *Manager) describeLocked(r *record, now time.Time) trace.Subchannel {
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
	return si
}

// Closed reports whether Close has been called. admin lists subchannels
// with it and Snapshot, without the copy of the ring Inspect makes.
func (m *Manager) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}
