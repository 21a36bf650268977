package leakzoo

import (
	"google.golang.org/grpc/balancer"
)

// Twin is grpc/grpc#38871's shape: two subchannels to one backend, the
// second never released. An address listed twice (a duplicate record, or
// two endpoints sharing it) gets a SubConn per listing, but the policy
// keeps one SubConn per address, so the earlier one is forgotten without
// Shutdown. Its listener still reconnects it after every GOAWAY or closed
// socket, so the backend keeps a second connected socket for the life of
// the channel, long after the list stops repeating it.
const Twin = "leakzoo_twin_subchannels"

func init() {
	balancer.Register(builder{Twin, func(cc balancer.ClientConn) balancer.Balancer { return &twin{rr: newRR(cc)} }})
}

type twin struct{ *rr }

func (b *twin) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeGoneLocked(set(addrs))
	seen := map[string]bool{}
	for _, a := range addrs {
		if _, ok := b.subs[a]; ok && !seen[a] {
			seen[a] = true
			continue
		}
		seen[a] = true
		if s := b.newSubLocked(a); s != nil {
			b.subs[a] = s // the bug: a SubConn already here for a is forgotten
		}
	}
	b.updatePickerLocked()
	return result(addrs)
}
