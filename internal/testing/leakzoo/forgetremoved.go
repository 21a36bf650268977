package leakzoo

import (
	"google.golang.org/grpc/balancer"
)

// ForgetRemoved is a round robin with the bug this project exists to
// catch: when the resolver removes an address it forgets the SubConn
// without calling Shutdown. Its socket stays open for as long as the
// channel does (the forgotten SubConn even reconnects after a GOAWAY);
// grpc's ClientConn.Close cleans it up at the very end, so only a check
// made while the channel is open can see it. Its Close shuts down what it
// still knows, so that a guard's reclaim is the only cleanup its trace
// needs. The name predates the zoo and stays: tests, docs and the runbook
// soak it by that name.
const ForgetRemoved = "leaky_round_robin"

func init() {
	balancer.Register(builder{ForgetRemoved, func(cc balancer.ClientConn) balancer.Balancer { return &forgetRemoved{rr: newRR(cc)} }})
}

type forgetRemoved struct{ *rr }

func (b *forgetRemoved) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	want := set(addrs)
	b.addNewLocked(want)
	for a := range b.subs {
		if !want[a] {
			delete(b.subs, a) // the bug: no b.subs[a].sc.Shutdown()
		}
	}
	b.updatePickerLocked()
	return result(addrs)
}
