package soak

import (
	"context"
	"runtime"
	"strings"
	"time"

	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
)

// drainTrace feeds the subscription to the trace checker and the phase
// counters until the subscription closes.
func (r *runner) drainTrace() {
	defer close(r.subDone)
	for e := range r.sub.Events() {
		r.trace.Add(e)
		if !r.isMain(e.Target) {
			continue
		}
		switch e.Kind {
		case trace.KindGoAway, trace.KindConnLost:
			r.mu.Lock()
			if p := r.cur; p != nil {
				if e.Kind == trace.KindGoAway {
					p.goaways++
				} else {
					p.lost[e.Cause]++
				}
			}
			r.mu.Unlock()
		}
	}
}

// liveManagers counts the run's managers still open or draining.
func (r *runner) liveManagers() int {
	n := 0
	for _, m := range subconn.Managers() {
		if strings.HasPrefix(m.Target(), r.prefix) {
			n++
		}
	}
	return n
}

// sampler samples every SampleInterval until ctx is done.
func (r *runner) sampler(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(r.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.sample(now)
		}
	}
}

// sample takes one reading and checks the invariants on it.
func (r *runner) sample(now time.Time) {
	sc, err := r.socks.count(r.names)
	if err != nil {
		r.problem("soak: reading sockets: %v", err)
		return
	}
	r.mu.Lock()
	s := r.spareLocked()
	r.mu.Unlock()
	s.At = since(r.start, now)
	s.Goroutines = runtime.NumGoroutine()
	s.FDs = countFDs()
	s.Sockets = fillCounts(s.Sockets, sc.byKind[kindMain])
	s.RPCsOK = r.main.stats.ok.Load()
	s.RPCsFailed = r.main.stats.failed.Load()
	if r.cfg.Compare != "" {
		s.CompareSockets = fillCounts(s.CompareSockets, sc.byKind[kindCompare])
	}
	for name, n := range sc.total {
		s.OtherSockets += n - sc.byKind[kindMain][name] - sc.byKind[kindCompare][name]
	}
	liveChannels, err := r.readOwners(&s)
	if err != nil {
		r.problem("soak: reading descriptors: %v", err)
		return
	}
	for _, m := range subconn.Managers() {
		if !strings.HasPrefix(m.Target(), r.prefix) {
			continue
		}
		for _, info := range m.Snapshot() {
			s.Records++
			if !info.Shutdown {
				s.Subchannels++
				s.Refs += info.Refs
			}
		}
	}

	subs, idle, read, werr := r.witness()

	r.mu.Lock()
	if p := r.cur; p != nil {
		s.Phase = p.Fault
		maxInto(p.MaxSockets, s.Sockets)
		if r.cfg.Compare != "" {
			maxInto(p.CompareMaxSockets, s.CompareSockets)
		}
	}
	r.checkRemovals(now, sc)
	r.checkLimit(now, s)
	r.checkSubchannels(now, s, subs, idle, read, werr)
	r.checkClosed(now, sc)
	r.observe(s, sc, liveChannels)
	r.keepLocked(s)
	r.mu.Unlock()
	if r.cfg.OnSample != nil {
		r.cfg.OnSample(s.clone()) // s's maps are reused once it is dropped
	}
}

// fillCounts copies src into dst, emptied (a new map if dst is nil), and
// returns it.
func fillCounts(dst, src map[string]int) map[string]int {
	if dst == nil {
		dst = make(map[string]int, len(src))
	}
	clear(dst)
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// clone returns s with maps of its own.
func (s Sample) clone() Sample {
	c := s
	for _, m := range []*map[string]int{&c.Sockets, &c.CompareSockets, &c.BackendFDs, &c.BackendConns, &c.Held} {
		if *m != nil {
			*m = fillCounts(nil, *m)
		}
	}
	return c
}

func maxInto(dst, src map[string]int) {
	for k, v := range src {
		if v > dst[k] {
			dst[k] = v
		}
	}
}
