package subconn

import (
	"sync"
	"time"
)

// handoffTimeout bounds how long a StateListener call waits for the
// manager's goroutine to finish the callback it is running. A holder's
// listener returns in microseconds; the bound only matters if one calls back
// into a SubConn that reports a state synchronously (grpc's never does),
// which would otherwise wait for itself.
const handoffTimeout = time.Second

// callbackQueue runs callbacks one at a time, in the order they were added,
// with no goroutine of its own while idle.
//
// Callbacks are appended while the manager's mu is held (so their order is
// the order of the state changes that caused them) and run after mu is
// released, by one of two kinds of caller:
//
//   - deliver, from grpc calling a listener of the manager's (its
//     serializer delivering a state or health update): it runs everything
//     queued on its own goroutine before it returns, as grpc would have run
//     the child's listener itself.
//   - kickAsync, from a holder's own call (Acquire, Release, Connect,
//     RegisterHealthListener), which may hold the holder's lock: it starts
//     the queue's goroutine, which runs the callbacks unless a deliver gets
//     there first.
//
// A deliver that finds the queue's goroutine running a callback waits for
// that callback to finish and takes the rest over, so that a state update is
// never left behind a callback a holder's call queued earlier.
type callbackQueue struct {
	// serial is held by the queue's goroutine while it runs callbacks
	// (Manager.Serialize).
	serial sync.Mutex

	mu       sync.Mutex
	q        []func()
	draining bool          // a goroutine is running callbacks
	own      bool          // ...and it is the queue's goroutine (started by kickAsync)
	spawned  bool          // the queue's goroutine is started and has not looked at q yet
	handoff  chan struct{} // non-nil: a deliver waits for the queue's goroutine, which closes it when it stops
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

// kickAsync has the queued callbacks run on the queue's goroutine, for a
// caller that must not run them itself.
func (cq *callbackQueue) kickAsync() {
	cq.mu.Lock()
	start := !cq.closed && len(cq.q) > 0 && !cq.draining && !cq.spawned
	if start {
		cq.spawned = true
	}
	cq.mu.Unlock()
	if start {
		go cq.runOwn()
	}
}

// runOwn is the queue's goroutine. It does nothing if a deliver has already
// run the callbacks or is running them. It runs them holding serial, so never
// during a Manager.Serialize call.
func (cq *callbackQueue) runOwn() {
	cq.serial.Lock()
	defer cq.serial.Unlock()
	cq.mu.Lock()
	cq.spawned = false
	if cq.draining || len(cq.q) == 0 {
		cq.mu.Unlock()
		return
	}
	cq.draining, cq.own = true, true
	cq.mu.Unlock()
	cq.drain()
}

// deliver runs the queued callbacks on the caller's goroutine. If the
// queue's goroutine is running one and wait is set, deliver waits for it to
// finish (up to handoffTimeout) and runs the rest itself. Another deliver
// already running them delivers them instead (grpc never calls two of the
// manager's listeners at once).
//
// wait must be false where grpc holds a lock of the SubConn's while calling
// (health listeners run under the SubConn's health mutex, which a holder's
// RegisterHealthListener on the queue's goroutine needs).
func (cq *callbackQueue) deliver(wait bool) {
	cq.mu.Lock()
	if wait && cq.draining && cq.own {
		if cq.handoff == nil {
			cq.handoff = make(chan struct{})
		}
		h := cq.handoff
		cq.mu.Unlock()
		t := time.NewTimer(handoffTimeout)
		select {
		case <-h:
			t.Stop()
			cq.mu.Lock()
		case <-t.C:
			cq.mu.Lock()
			if cq.handoff == h { // still running: leave the callbacks to it
				cq.handoff = nil
				cq.mu.Unlock()
				logger.Warningf("subconn: a state update is delivered late: a listener has been running for more than %v", handoffTimeout)
				return
			}
		}
	}
	if cq.closed || cq.draining || len(cq.q) == 0 {
		cq.mu.Unlock()
		return
	}
	cq.draining, cq.own = true, false
	cq.mu.Unlock()
	cq.drain()
}

// drain runs callbacks until the queue is empty or closed, or, on the
// queue's goroutine, until a deliver asks to take over.
func (cq *callbackQueue) drain() {
	for {
		cq.mu.Lock()
		if len(cq.q) == 0 || cq.closed || (cq.own && cq.handoff != nil) {
			if cq.closed {
				cq.q = nil
			}
			cq.draining, cq.own = false, false
			if cq.handoff != nil {
				close(cq.handoff)
				cq.handoff = nil
			}
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
