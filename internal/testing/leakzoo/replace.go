package leakzoo

import (
	"google.golang.org/grpc/balancer"
)

// ReplaceRetained replaces the SubConn of every backend that stays in the
// list on every resolver update, as a policy that rebuilds its list from
// scratch does, and never shuts the old ones down. Removed backends are
// shut down correctly. Each forgotten SubConn keeps its connected socket
// until the backend closes it, so sockets pile up on the backends that are
// still listed, where no removal bound looks (the shape of
// grpc/grpc-java#10672: subchannels re-created without an address change
// accumulate).
const ReplaceRetained = "leakzoo_replace_retained"

func init() {
	balancer.Register(builder{ReplaceRetained, func(cc balancer.ClientConn) balancer.Balancer { return &replaceRetained{rr: newRR(cc)} }})
}

type replaceRetained struct{ *rr }

func (b *replaceRetained) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	want := set(addrs)
	b.removeGoneLocked(want)
	for a := range want {
		if s := b.newSubLocked(a); s != nil {
			b.subs[a] = s // the bug: the retained backend's old SubConn is forgotten
		}
	}
	b.updatePickerLocked()
	return result(addrs)
}
