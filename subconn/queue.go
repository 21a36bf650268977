package subconn

import "sync"

// callbackQueue runs callbacks one at a time, in the order they were added,
// with no goroutine of its own while idle.
//
// Callbacks are appended while the manager's mu is held (so their order is
// the order of the state changes that caused them) and run after mu is
// released, by whichever goroutine calls kick first: synchronously when the
// caller may call into the balancer (grpc's serializer delivering a state
// update), or on a short-lived goroutine when it may not (a balancer's own
// call into Acquire or Connect, which holds the balancer's lock).
type callbackQueue struct {
	mu       sync.Mutex
	q        []func()
	draining bool
	closed   bool
}

// add appends f. It never runs f.
func (cq *callbackQueue) add(f func()) {
	cq.mu.Lock()
	if !cq.closed {
		cq.q = append(cq.q, f)
	}
	cq.mu.Unlock()
}

// kick runs queued callbacks unless another goroutine is already running
// them; sync says whether the caller's goroutine may run them itself.
func (cq *callbackQueue) kick(sync bool) {
	cq.mu.Lock()
	if cq.draining || len(cq.q) == 0 {
		cq.mu.Unlock()
		return
	}
	cq.draining = true
	cq.mu.Unlock()
	if sync {
		cq.drain()
	} else {
		go cq.drain()
	}
}

func (cq *callbackQueue) drain() {
	for {
		cq.mu.Lock()
		if len(cq.q) == 0 || cq.closed {
			cq.q = nil
			cq.draining = false
			cq.mu.Unlock()
			return
		}
		f := cq.q[0]
		cq.q[0] = nil
		cq.q = cq.q[1:]
		cq.mu.Unlock()
		f()
	}
}

// close drops queued callbacks; later adds are ignored. A callback already
// running finishes.
func (cq *callbackQueue) close() {
	cq.mu.Lock()
	cq.closed = true
	cq.q = nil
	cq.mu.Unlock()
}
