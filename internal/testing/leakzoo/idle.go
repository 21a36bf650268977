package leakzoo

import (
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// NewOnIdle makes a new SubConn when one goes IDLE (after a GOAWAY or a
// closed socket) instead of calling Connect on it, and forgets the old one
// without Shutdown. The forgotten SubConn holds no socket: it is a
// subchannel leaked with nothing a descriptor, socket or goroutine count
// can see, until grpc's ClientConn.Close cleans it up. grpc-go's balancer
// documentation warns against exactly this ("never make a new one for
// it"): only a witness that lists subchannels, such as channelz, sees it.
const NewOnIdle = "leakzoo_new_subconn_on_idle"

func init() {
	balancer.Register(builder{NewOnIdle, func(cc balancer.ClientConn) balancer.Balancer {
		b := &newOnIdle{rr: newRR(cc)}
		b.onStateLocked = b.onState
		return b
	}})
}

type newOnIdle struct{ *rr }

// onState replaces a SubConn that went IDLE. Caller must hold b.mu.
func (b *newOnIdle) onState(s *sub, st connectivity.State) {
	if st != connectivity.Idle || b.subs[s.addr] != s {
		return
	}
	if n := b.newSubLocked(s.addr); n != nil {
		b.subs[s.addr] = n // the bug: s is neither reconnected nor shut down
	}
}

func (b *newOnIdle) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	want := set(addrs)
	b.removeGoneLocked(want)
	b.addNewLocked(want)
	b.updatePickerLocked()
	return result(addrs)
}
