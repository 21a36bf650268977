package leakzoo

import (
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// GoroutinePerReady starts a watcher goroutine every time a SubConn
// becomes READY (every reconnect) and stops them only when the policy
// closes: one more goroutine per reconnect for the life of the channel
// (the shape of grpc/grpc-go#1936's per-stream goroutines that piled up
// after an upgrade). The leak heals at shutdown, so only a check made
// while the channel lives can see it.
const GoroutinePerReady = "leakzoo_goroutine_per_ready"

func init() {
	balancer.Register(builder{GoroutinePerReady, func(cc balancer.ClientConn) balancer.Balancer {
		b := &goroutinePerReady{rr: newRR(cc), done: make(chan struct{})}
		b.onStateLocked = b.onState
		return b
	}})
}

type goroutinePerReady struct {
	*rr
	done chan struct{} // closed by Close: the only way the watchers end
}

// onState reconnects on IDLE as round robin does, and starts a watcher per
// READY. Caller must hold b.mu.
func (b *goroutinePerReady) onState(s *sub, st connectivity.State) {
	switch st {
	case connectivity.Idle:
		s.sc.Connect()
	case connectivity.Ready:
		go watchReady(b.done) // the bug: nothing ends it when the connection does
	}
}

// watchReady stands for a per-connection helper (a load reporter, a
// keepalive watcher) that waits for its policy to close.
func watchReady(done <-chan struct{}) { <-done }

func (b *goroutinePerReady) UpdateClientConnState(s balancer.ClientConnState) error {
	addrs := addresses(s.ResolverState)
	b.mu.Lock()
	defer b.mu.Unlock()
	want := set(addrs)
	b.removeGoneLocked(want)
	b.addNewLocked(want)
	b.updatePickerLocked()
	return result(addrs)
}

func (b *goroutinePerReady) Close() {
	b.rr.Close()
	close(b.done)
}
