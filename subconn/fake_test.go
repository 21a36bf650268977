package subconn

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/grpclog"
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

// holdingListener accepts connections on 127.0.0.1 and keeps them open
// until the test ends.
func holdingListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// dialAfterShutdown releases h while a dial for it is under way, then lets
// the dial finish, and returns the socket the dialer handed out. grpc's own
// addrConn closes a transport that connects after Shutdown at once, so this
// calls the record's dial directly to keep the socket open.
func dialAfterShutdown(t *testing.T, h *SubConn, target string) net.Conn {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	slow := func(ctx context.Context, a string) (net.Conn, error) {
		close(started)
		<-unblock
		return defaultDial(ctx, a)
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := h.rec.dial(context.Background(), target, slow)
		done <- result{c, err}
	}()
	<-started
	if err := h.Release("removed while dialing"); err != nil {
		t.Fatal(err)
	}
	close(unblock)
	r := <-done
	if r.err != nil {
		t.Fatalf("the dial under way at Shutdown failed: %v", r.err)
	}
	return r.c
}

// trackedPipe returns a trackedConn owned by a fresh subchannel around one
// end of a pipe.
func trackedPipe(t *testing.T) (*trackedConn, net.Conn) {
	t.Helper()
	m := NewManager(newFakeCC(), WithTraceRing(0))
	t.Cleanup(func() { m.Close() })
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Release("done") })
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	return newTrackedConn(a, h.rec), b
}

// errorLog is a grpclog.DepthLoggerV2 that keeps the warning and error
// lines and drops the rest.
type errorLog struct {
	grpclog.LoggerV2
	mu     sync.Mutex
	errors []string
}

func (l *errorLog) InfoDepth(int, ...any) {}

func (l *errorLog) WarningDepth(d int, args ...any) { l.ErrorDepth(d, args...) }

func (l *errorLog) FatalDepth(_ int, args ...any) { panic(fmt.Sprint(args...)) }

func (l *errorLog) ErrorDepth(_ int, args ...any) {
	l.mu.Lock()
	l.errors = append(l.errors, fmt.Sprint(args...))
	l.mu.Unlock()
}

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.errors
	l.errors = nil
	return out
}

// captureLog sends grpc's log to an errorLog for the rest of the test. No
// grpc channel exists while this package's internal tests run, so nothing
// else logs meanwhile. grpc's default logger is restored afterwards.
func captureLog(t *testing.T) *errorLog {
	log := &errorLog{LoggerV2: grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard)}
	grpclog.SetLoggerV2(log)
	t.Cleanup(func() { grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr)) })
	return log
}

// within runs f and fails the test if it has not returned after d: the
// tests below turn a hang into a quick failure. f's goroutine is left
// behind on failure.
func within(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}
