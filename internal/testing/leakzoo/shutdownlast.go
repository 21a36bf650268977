package leakzoo

import (
	"google.golang.org/grpc/balancer"
)

// ShutdownLast creates a new SubConn for every address on every resolver
// update and, meaning to release the previous list, shuts down only the
// last SubConn it created (the loop variable that outlived its loop). Every
// other SubConn of each update is forgotten while connected, so every
// update leaves a socket behind on all backends but one (the shape of
// hashicorp/consul#15701, whose pick_first derivative had to be taught to
// remove its subConns on every update).
const ShutdownLast = "leakzoo_shutdown_only_last"

func init() {
	balancer.Register(builder{ShutdownLast, func(cc balancer.ClientConn) balancer.Balancer { return &shutdownLast{rr: newRR(cc)} }})
}

type shutdownLast struct {
	*rr
	last *sub // the last SubConn created, the only one released
}

func (b *shutdownLast) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last != nil {
		b.last.sc.Shutdown() // the bug: only the last, not every previous one
		b.last = nil
	}
	clear(b.subs)
	for a := range set(addrs) {
		if s := b.newSubLocked(a); s != nil {
			b.subs[a] = s
			b.last = s
		}
	}
	b.updatePickerLocked()
	return result(addrs)
}
