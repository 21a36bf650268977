package subconn

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"
)

// A Set is one holder's references: at most one SubConn per backend key,
// kept in step with an address list by Sync.
type Set struct {
	m      *Manager
	holder string
	opts   []AcquireOption
	listen func(*SubConn, balancer.SubConnState)

	mu     sync.Mutex
	held   keyMap[*setEntry]
	gen    uint64
	closed bool
}

type setEntry struct {
	sc  *SubConn
	gen uint64 // last Sync that wanted it
}

func (e *setEntry) keyAddress() resolver.Address { return e.sc.rec.keyAddress() }

// NewSet returns an empty Set for holder. listener, if not nil, receives the
// state updates of every SubConn in the set. opts apply to every Acquire
// (WithAutoReconnect).
func (m *Manager) NewSet(holder string, listener func(*SubConn, balancer.SubConnState), opts ...AcquireOption) *Set {
	return &Set{m: m, holder: holder, opts: opts, listen: listener, held: newKeyMap[*setEntry]()}
}

// Sync makes the set hold exactly the backends in addrs: it acquires keys
// that are new and releases keys that are gone, touching nothing else;
// duplicate addresses count once. The cost is one hash lookup per address
// plus one Acquire or Release per change. On an acquire error Sync goes on
// with the other addresses, holds what it could acquire and returns every
// error joined.
func (s *Set) Sync(addrs []resolver.Address) (added, removed []*SubConn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, fmt.Errorf("subconn: sync of set %q after Close: %w", s.holder, ErrClosed)
	}
	s.gen++
	var errs []error
	kept := 0
	for _, a := range addrs {
		ka := keyAddr(a)
		if e, ok := s.held.get(ka); ok {
			if e.gen != s.gen {
				e.gen = s.gen
				kept++
			}
			continue
		}
		opts := s.opts
		if s.listen != nil {
			opts = append(opts[:len(opts):len(opts)], s.listenerOpt())
		}
		sc, aerr := s.m.Acquire(a, s.holder, opts...)
		if aerr != nil {
			errs = append(errs, aerr)
			continue
		}
		s.held.set(ka, &setEntry{sc: sc, gen: s.gen})
		added = append(added, sc)
		kept++
	}
	if s.held.len() > kept { // something is gone: sweep
		var stale []*setEntry
		s.held.all(func(e *setEntry) {
			if e.gen != s.gen {
				stale = append(stale, e)
			}
		})
		for _, e := range stale {
			s.held.remove(e.sc.rec.keyAddress(), func(x *setEntry) bool { return x == e })
			if rerr := e.sc.Release("address removed"); rerr != nil {
				errs = append(errs, rerr)
			}
			removed = append(removed, e.sc)
		}
	}
	return added, removed, errors.Join(errs...)
}

// listenerOpt binds the set's listener to the SubConn being acquired. The
// manager binds the handle before it can deliver any update.
func (s *Set) listenerOpt() AcquireOption {
	var h *SubConn
	return acquireOptionFunc(func(o *acquireOpts) {
		o.listener = func(st balancer.SubConnState) { s.listen(h, st) }
		o.bind = func(sc *SubConn) { h = sc }
	})
}

// get returns the SubConn the set holds for addr's key.
func (s *Set) get(addr resolver.Address) (*SubConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.held.get(keyAddr(addr))
	if !ok {
		return nil, false
	}
	return e.sc, true
}

// size returns the number of SubConns held.
func (s *Set) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held.len()
}

// Close releases every SubConn in the set. Later Syncs fail; a second Close
// is a no-op.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	s.held.all(func(e *setEntry) {
		if err := e.sc.Release("set closed"); err != nil {
			errs = append(errs, err)
		}
	})
	s.held = newKeyMap[*setEntry]()
	return errors.Join(errs...)
}
