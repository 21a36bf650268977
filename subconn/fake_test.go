package subconn

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// fakeCC is a balancer.ClientConn that records NewSubConn and Shutdown. It
// stands in for grpc where a test needs exact call counts or to push state
// transitions on demand; everything that involves the network is tested with
// real servers in the _ext_test files.
type fakeCC struct {
	balancer.ClientConn // nil: an unexpected call panics the test

	mu         sync.Mutex
	subConns   []*fakeSC
	live       map[string]int // SubConns not yet shut down, by Addr
	violations []string
	newErr     map[string]error // NewSubConn fails for these Addrs
	states     []balancer.State
	metrics    *fakeRecorder
}

func newFakeCC() *fakeCC {
	return &fakeCC{live: map[string]int{}, newErr: map[string]error{}, metrics: &fakeRecorder{counts: map[string]int64{}}}
}

func (f *fakeCC) MetricsRecorder() estats.MetricsRecorder { return f.metrics }

// fakeRecorder records counters and up-down counters by "name labels..."
// (the required labels; with the optional ones too in withOptional),
// and counts asynchronous reporters registered with it (the manager must
// register none: grpc's tests flag a reporter still registered when a test
// ends, and a balancer that is never closed would leave one).
type fakeRecorder struct {
	estats.UnimplementedMetricsRecorder

	mu     sync.Mutex
	counts map[string]int64
	updown map[string]int64
	// withOptional sums every record by "name labels... | optional...".
	withOptional map[string]int64
	reporters    int
}

// optionalKey records a sum under every label, optional ones included.
// Caller must hold r.mu.
func (r *fakeRecorder) optionalKey(name string, required int, labels []string, incr int64) {
	if r.withOptional == nil {
		r.withOptional = map[string]int64{}
	}
	r.withOptional[name+" "+strings.Join(labels[:required], " ")+" | "+strings.Join(labels[required:], " ")] += incr
}

func (r *fakeRecorder) RecordInt64Count(h *estats.Int64CountHandle, incr int64, labels ...string) {
	r.mu.Lock()
	r.counts[h.Name+" "+strings.Join(labels[:len(h.Labels)], " ")] += incr
	r.optionalKey(h.Name, len(h.Labels), labels, incr)
	r.mu.Unlock()
}

func (r *fakeRecorder) RecordInt64UpDownCount(h *estats.Int64UpDownCountHandle, incr int64, labels ...string) {
	r.mu.Lock()
	if r.updown == nil {
		r.updown = map[string]int64{}
	}
	r.updown[h.Name+" "+strings.Join(labels[:len(h.Labels)], " ")] += incr
	r.optionalKey(h.Name, len(h.Labels), labels, incr)
	r.mu.Unlock()
}

func (r *fakeRecorder) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	r.mu.Lock()
	r.reporters++
	r.mu.Unlock()
	return func() {}
}

func (r *fakeRecorder) count(key string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// gauges returns the up-down counters' sums by "name labels...".
func (r *fakeRecorder) gauges() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.updown)
}

func (r *fakeRecorder) asyncReporters() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reporters
}

func (f *fakeCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := addrs[0].Addr
	if err := f.newErr[a]; err != nil {
		return nil, err
	}
	sc := &fakeSC{cc: f, addr: addrs[0], listener: opts.StateListener}
	f.subConns = append(f.subConns, sc)
	f.live[a]++
	if f.live[a] > 1 {
		f.violations = append(f.violations, fmt.Sprintf("%d SubConns not shut down for %s", f.live[a], a))
	}
	return sc, nil
}

func (f *fakeCC) UpdateState(s balancer.State) {
	f.mu.Lock()
	f.states = append(f.states, s)
	f.mu.Unlock()
}

func (f *fakeCC) Target() string { return "fake:///test" }

func (f *fakeCC) newSubConnCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subConns)
}

func (f *fakeCC) sc(i int) *fakeSC {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subConns[i]
}

func (f *fakeCC) checkViolations(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violations {
		t.Error(v)
	}
	for _, sc := range f.subConns {
		if n := sc.shutdowns.Load(); n > 1 {
			t.Errorf("SubConn %s shut down %d times", sc.addr.Addr, n)
		}
	}
}

type fakeSC struct {
	balancer.SubConn

	cc        *fakeCC
	addr      resolver.Address
	listener  func(balancer.SubConnState)
	shutdowns atomic.Int32
	connects  atomic.Int32

	mu     sync.Mutex
	health []func(balancer.SubConnState)
}

func (sc *fakeSC) Connect() { sc.connects.Add(1) }

func (sc *fakeSC) Shutdown() {
	if sc.shutdowns.Add(1) == 1 {
		sc.cc.mu.Lock()
		sc.cc.live[sc.addr.Addr]--
		sc.cc.mu.Unlock()
	} else {
		sc.cc.mu.Lock()
		sc.cc.violations = append(sc.cc.violations, "second Shutdown of "+sc.addr.Addr)
		sc.cc.mu.Unlock()
	}
}

func (sc *fakeSC) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.mu.Lock()
	sc.health = append(sc.health, l)
	sc.mu.Unlock()
}

func (sc *fakeSC) healthRegistrations() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.health)
}

// push delivers a state update the way grpc does: on the caller's goroutine
// (standing in for grpc's serializer).
func (sc *fakeSC) push(s connectivity.State) {
	sc.listener(balancer.SubConnState{ConnectivityState: s})
}

func (sc *fakeSC) pushHealth(s connectivity.State) {
	sc.mu.Lock()
	l := sc.health[len(sc.health)-1]
	sc.mu.Unlock()
	l(balancer.SubConnState{ConnectivityState: s})
}

// recorder collects the states delivered to one holder.
type recorder struct {
	mu     sync.Mutex
	states []connectivity.State
}

func (r *recorder) listen(s balancer.SubConnState) {
	r.mu.Lock()
	r.states = append(r.states, s.ConnectivityState)
	r.mu.Unlock()
}

func (r *recorder) get() []connectivity.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]connectivity.State(nil), r.states...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func addr(a string) resolver.Address { return resolver.Address{Addr: a} }
