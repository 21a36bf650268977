package roundrobin

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/connectivity"
)

// noSet marks an endpoint in no state set: removed, or reported SHUTDOWN.
const noSet = connectivity.State(-1)

var (
	errNoChildren = errors.New("no children to pick from") // grpc's endpointsharding's words
	// notYet is the picker of an endpoint that has not reported, and of the
	// balancer while it is CONNECTING: grpc's pick_first reports CONNECTING
	// with exactly this, so a round robin over its CONNECTING children's
	// pickers (what endpointsharding publishes) picks the same.
	notYet = base.NewErrPicker(balancer.ErrNoSubConnAvailable)
)

// aggregate groups a balancer's endpoints by connectivity state, kept as
// they change: moving an endpoint is O(1), and so are the aggregate state
// and the READY picker.
type aggregate struct {
	// sets[s] holds the endpoints in state s, in no particular order;
	// endpoint.set and endpoint.setIdx say where each one is. The READY
	// endpoints' entries are at the same indexes in ready.
	sets  [connectivity.TransientFailure + 1][]*endpoint
	ready readySet
}

// state is the aggregate connectivity state, by grpc's endpointsharding's
// rules: READY if any endpoint is READY, else CONNECTING if any is
// connecting, else IDLE if any is idle, else TRANSIENT_FAILURE.
func (a *aggregate) state() connectivity.State {
	if len(a.sets[connectivity.Ready]) > 0 {
		return connectivity.Ready
	}
	if len(a.sets[connectivity.Connecting]) > 0 {
		return connectivity.Connecting
	}
	if len(a.sets[connectivity.Idle]) > 0 {
		return connectivity.Idle
	}
	return connectivity.TransientFailure
}

// move puts e in the set of state to (noSet: none), with picker p as its
// picker there.
func (a *aggregate) move(e *endpoint, to connectivity.State, p balancer.Picker) {
	from := e.setOf()
	if from == to && to != connectivity.Ready {
		return
	}
	if from != noSet {
		a.remove(e)
	}
	e.set = int8(to)
	if to == noSet {
		return
	}
	e.setIdx = int32(len(a.sets[to]))
	a.sets[to] = append(a.sets[to], e)
	if to == connectivity.Ready {
		a.ready.add(readyEntryOf(p))
	}
}

// remove takes e out of its set, moving the set's last endpoint to its place.
func (a *aggregate) remove(e *endpoint) {
	s, i := e.setOf(), int(e.setIdx)
	set := a.sets[s]
	last := len(set) - 1
	if s == connectivity.Ready {
		a.ready.remove(i)
	}
	if i != last {
		set[i] = set[last]
		set[i].setIdx = int32(i)
	}
	set[last] = nil
	a.sets[s] = set[:last]
	e.set = int8(noSet)
}

// picker returns the aggregate state of a balancer with n endpoints and the
// picker for it. resolverErr is the last resolver error, if any since the
// last good update.
func (a *aggregate) picker(n int, resolverErr error) (connectivity.State, balancer.Picker) {
	if n == 0 {
		if resolverErr != nil {
			return connectivity.TransientFailure, base.NewErrPicker(fmt.Errorf("name resolver error: %v", resolverErr))
		}
		return connectivity.TransientFailure, base.NewErrPicker(errNoChildren)
	}
	switch st := a.state(); st {
	case connectivity.Ready:
		return st, &readyPicker{set: &a.ready, next: start(len(a.sets[st]))}
	case connectivity.Connecting:
		return st, notYet
	default:
		// IDLE (each pick wakes one endpoint) or TRANSIENT_FAILURE (each
		// pick fails with one endpoint's error): the pickers of the
		// endpoints in that state, as endpointsharding does.
		set := a.sets[st]
		ps := make([]balancer.Picker, len(set))
		for i, e := range set {
			ps[i] = e.picker
			if ps[i] == nil {
				ps[i] = notYet
			}
		}
		return st, &childPicker{pickers: ps, next: start(len(ps))}
	}
}

// start returns a random starting point for a round robin over n entries,
// so that channels sharing a list do not all start on the same backend.
func start(n int) *atomic.Uint32 {
	var c atomic.Uint32
	if n > 0 {
		c.Store(uint32(rand.IntN(n)))
	}
	return &c
}

// readySet holds what picking each READY endpoint returns, for pickers to
// read while the balancer changes it.
//
// grpc's pickers are immutable snapshots, and grpc's round_robin rebuilds
// one, in O(endpoints), for every endpoint that turns READY: a resolver
// update that brings n endpoints up costs O(n²). readyPicker is a view
// instead: adding or removing a READY endpoint is O(1) and every picker
// handed out while the balancer is READY sees it at once, so the balancer
// sends grpc a new picker only when its aggregate state changes or a READY
// endpoint leaves (RPCs that picked it wait for the next picker).
//
// Writers hold the balancer's mu; readers take no lock. Every slot is an
// atomic pointer and the slice header is published through an atomic
// pointer too, so a reader sees either the old or the new entry of a slot,
// never a torn one; a slot past the reader's view's end is never read. A
// reader holding an older view may pick an endpoint that just left, or nil
// (a cleared slot): grpc then waits for the next picker, which the
// balancer sends when an endpoint leaves.
type readySet struct {
	view  atomic.Pointer[[]atomic.Pointer[readyEntry]]
	slots []atomic.Pointer[readyEntry] // the writers' copy of *view
}

// readyEntry is what picking one READY endpoint returns: its real SubConn,
// or, if its picker is not a plain SubConn, what its picker returns.
type readyEntry struct {
	res    balancer.PickResult
	picker balancer.Picker // nil: res
}

func readyEntryOf(p balancer.Picker) *readyEntry {
	if sc, ok := policy.ReadySubConn(p); ok {
		return &readyEntry{res: balancer.PickResult{SubConn: sc}}
	}
	if p == nil { // a child that breaks the contract: never hand grpc a nil SubConn
		p = notYet
	}
	return &readyEntry{picker: p}
}

func (s *readySet) add(e *readyEntry) {
	n := len(s.slots)
	if n == cap(s.slots) {
		grown := make([]atomic.Pointer[readyEntry], n, max(16, 2*n))
		for i := range s.slots {
			grown[i].Store(s.slots[i].Load())
		}
		s.slots = grown
	}
	s.slots = s.slots[:n+1]
	s.slots[n].Store(e)
	s.publish()
}

// remove removes the i-th entry, moving the last one to its place.
func (s *readySet) remove(i int) {
	last := len(s.slots) - 1
	if i != last {
		s.slots[i].Store(s.slots[last].Load())
	}
	s.slots[last].Store(nil) // no reference to a SubConn that is gone
	s.slots = s.slots[:last]
	s.publish()
}

func (s *readySet) publish() {
	v := s.slots
	s.view.Store(&v)
}

// readyPicker spreads picks over the READY endpoints' real SubConns, one
// entry per endpoint, with one atomic counter and no allocation.
type readyPicker struct {
	set  *readySet
	next *atomic.Uint32
}

func (p *readyPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	v := p.set.view.Load()
	if v == nil || len(*v) == 0 {
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	slots := *v
	e := slots[p.next.Add(1)%uint32(len(slots))].Load()
	if e == nil {
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	if e.picker != nil {
		return e.picker.Pick(info)
	}
	return e.res, nil
}

// childPicker round-robins over endpoints' own pickers: those of the
// endpoints in the aggregate state when it is IDLE or TRANSIENT_FAILURE.
type childPicker struct {
	pickers []balancer.Picker
	next    *atomic.Uint32
}

func (p *childPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	n := p.next.Add(1)
	return p.pickers[n%uint32(len(p.pickers))].Pick(info)
}

// publisher remembers what the balancer last sent grpc.
type publisher struct {
	published bool               // a picker was sent
	state     connectivity.State // the state last sent
}

// publishLocked sends grpc the picker of the current state. Caller must
// hold b.mu.
func (b *roundRobin) publishLocked() {
	st, p := b.agg.picker(len(b.all), b.resolverErr)
	b.pub.published, b.pub.state = true, st
	b.cc.UpdateState(balancer.State{ConnectivityState: st, Picker: p})
}
