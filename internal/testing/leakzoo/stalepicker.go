package leakzoo

import (
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// StalePicker builds its picker from the SubConns that became READY, not
// from the resolver's list: a backend the resolver removes is dropped from
// the list, but its SubConn stays in the picker for as long as it stays
// READY, and is shut down only when it leaves READY. RPCs keep going to a
// backend the resolver removed (to a decommissioned backend they fail or
// wait), and its connected socket stays, with no bound: a quiet backend
// never leaves READY (the shape of grpc/grpc-go#2787, where removed
// SubConns stayed in base's picker until it was regenerated).
const StalePicker = "leakzoo_stale_picker"

func init() {
	balancer.Register(builder{StalePicker, func(cc balancer.ClientConn) balancer.Balancer {
		b := &stalePicker{rr: newRR(cc), ready: map[*sub]bool{}}
		b.onStateLocked = b.onState
		b.readyLocked = b.picked
		return b
	}})
}

type stalePicker struct {
	*rr
	ready map[*sub]bool // the picker's SubConns; guarded by mu
}

// onState keeps the picker's set and reconnects on IDLE. Caller must hold
// b.mu.
func (b *stalePicker) onState(s *sub, st connectivity.State) {
	if st == connectivity.Ready {
		b.ready[s] = true
		return
	}
	delete(b.ready, s)
	if b.subs[s.addr] != s {
		s.sc.Shutdown() // removed, and out of the picker at last
		return
	}
	if st == connectivity.Idle {
		s.sc.Connect()
	}
}

func (b *stalePicker) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	want := set(addrs)
	b.addNewLocked(want)
	for a, s := range b.subs {
		if !want[a] {
			delete(b.subs, a)
			if !b.ready[s] {
				s.sc.Shutdown()
			} // the bug: a READY one stays in the picker, to be shut down when it leaves READY
		}
	}
	b.updatePickerLocked()
	return result(addrs)
}

// picked lists every READY SubConn, listed or not. Caller must hold b.mu.
func (b *stalePicker) picked() []balancer.SubConn {
	var scs []balancer.SubConn
	for s := range b.ready {
		scs = append(scs, s.sc)
	}
	return scs
}

// Close shuts down what the policy knows and what its picker still holds.
func (b *stalePicker) Close() {
	b.mu.Lock()
	for s := range b.ready {
		if b.subs[s.addr] != s {
			s.sc.Shutdown()
		}
	}
	clear(b.ready)
	b.mu.Unlock()
	b.rr.Close()
}
