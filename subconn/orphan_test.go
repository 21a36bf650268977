package subconn

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// The orphan watch on a fake ClientConn: exact state deliveries, metric
// counts and trace events. The guard's tests show the same with real
// servers and sockets.

const orphanTimeout = 30 * time.Millisecond

func orphanState(addrs ...string) resolver.State {
	var s resolver.State
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	return s
}

func newOrphanChild(t *testing.T, mode OrphanMode) (*fakeCC, *Manager, *ClientConn) {
	t.Helper()
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///orphans"))
	c := m.ClientConn(cc, "child")
	c.WatchOrphans(orphanTimeout, mode)
	t.Cleanup(func() {
		c.StopWatching()
		m.Close()
		cc.checkViolations(t)
	})
	return cc, m, c
}

func kinds(events []trace.Event, key string) []trace.Kind {
	var out []trace.Kind
	for _, e := range events {
		if e.Key == key && e.Kind != trace.KindState && e.Kind != trace.KindConnect {
			out = append(out, e.Kind)
		}
	}
	return out
}

func TestOrphanIsReclaimedAndTheChildHearsNothingMore(t *testing.T) {
	cc, m, c := newOrphanChild(t, ReclaimOrphans)
	c.ObserveResolverState(orphanState("10.0.0.1:1", "10.0.0.2:1"))
	var ra, rb recorder
	a, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: ra.listen})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.NewSubConn([]resolver.Address{addr("10.0.0.2:1")}, balancer.NewSubConnOptions{StateListener: rb.listen})
	if err != nil {
		t.Fatal(err)
	}
	a.Connect()
	b.Connect()
	cc.sc(0).push(connectivity.Ready)
	cc.sc(1).push(connectivity.Ready)

	// b leaves the resolver state; the child forgets to shut it down.
	c.ObserveResolverState(orphanState("10.0.0.1:1"))
	waitFor(t, "the orphan to be shut down", func() bool { return cc.sc(1).shutdowns.Load() == 1 })
	if cc.sc(0).shutdowns.Load() != 0 {
		t.Fatal("the subchannel still in the resolver state was shut down")
	}
	st := m.Stats()
	if st.Orphans != 1 {
		t.Errorf("Stats.Orphans = %d, want 1", st.Orphans)
	}
	if n := cc.metrics.count(MetricLeaks + " fake:///orphans orphan"); n != 1 {
		t.Errorf("leakproof.leaks{orphan} = %d, want 1 (counts %v)", n, cc.metrics.counts)
	}
	got := kinds(m.Trace(), "10.0.0.2:1")
	want := []trace.Kind{trace.KindCreate, trace.KindRef, trace.KindOrphan, trace.KindUnref, trace.KindShutdown, trace.KindDestroy}
	if !slices.Equal(got, want) {
		t.Fatalf("trace of the orphan: %v, want %v", got, want)
	}
	for _, e := range m.Trace() {
		if e.Kind == trace.KindOrphan && (e.Holder != "child" || !strings.Contains(e.Reason, "10.0.0.2:1 absent from the resolver state for") || !strings.Contains(e.Reason, "reclaim")) {
			t.Errorf("orphan event does not name holder, address and how long: %v", e)
		}
	}
	rep := trace.Check(m.Trace())
	if !rep.Clean() || len(rep.Orphans) != 1 || rep.Orphans[0].Kind != trace.ProblemOrphan || rep.Orphans[0].Key != "10.0.0.2:1" {
		t.Fatalf("trace.Check: clean %v, orphans %v, problems %v", rep.Clean(), rep.Orphans, rep.Problems)
	}

	// The child's late Shutdown is a no-op, and it never hears of b again:
	// no final SHUTDOWN, no later state.
	time.Sleep(10 * time.Millisecond) // let queued callbacks run
	before := rb.get()
	b.Shutdown()
	cc.sc(1).push(connectivity.Idle)
	time.Sleep(10 * time.Millisecond)
	if after := rb.get(); !slices.Equal(before, after) || slices.Contains(after, connectivity.Shutdown) {
		t.Fatalf("the child heard of its reclaimed SubConn: before %v, after %v", before, after)
	}
	if err := b.(*SubConn).Release("again"); err == nil {
		t.Error("releasing a reclaimed SubConn again is not an error")
	}
	if n := m.Stats().Unrefs; n != 1 {
		t.Errorf("unrefs = %d, want 1 (the reclaim only)", n)
	}
	a.Shutdown()
	waitFor(t, "the final SHUTDOWN of a SubConn the child shut down itself", func() bool {
		return slices.Contains(ra.get(), connectivity.Shutdown)
	})
}

func TestOrphanReportedIsNotShutDown(t *testing.T) {
	cc, m, c := newOrphanChild(t, ReportOrphans)
	c.ObserveResolverState(orphanState("10.0.0.1:1"))
	var r recorder
	h, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: r.listen})
	if err != nil {
		t.Fatal(err)
	}
	c.ObserveResolverState(orphanState("10.0.0.9:1"))
	waitFor(t, "the orphan to be reported", func() bool { return m.Stats().Orphans == 1 })
	time.Sleep(3 * orphanTimeout) // a second report would come by now
	if n := m.Stats().Orphans; n != 1 {
		t.Errorf("reported %d times, want once", n)
	}
	if cc.sc(0).shutdowns.Load() != 0 || h.(*SubConn).Released() {
		t.Fatal("report mode shut the orphan down")
	}
	h.Connect() // grpc reports no state before the holder's Connect
	cc.sc(0).push(connectivity.Ready)
	waitFor(t, "the child to still get updates", func() bool { return slices.Contains(r.get(), connectivity.Ready) })
	got := kinds(m.Trace(), "10.0.0.1:1")
	if want := []trace.Kind{trace.KindCreate, trace.KindRef, trace.KindOrphan}; !slices.Equal(got, want) {
		t.Fatalf("trace: %v, want %v", got, want)
	}
	h.Shutdown()
	if cc.sc(0).shutdowns.Load() != 1 {
		t.Fatal("the child's own Shutdown did not shut it down")
	}
}

func TestOrphanWatchJudgesOnlyResolverAddressesStillAbsent(t *testing.T) {
	cc, m, c := newOrphanChild(t, ReclaimOrphans)
	c.ObserveResolverState(orphanState("10.0.0.1:1"))
	// From elsewhere: never in the resolver state, never judged.
	other, err := c.NewSubConn([]resolver.Address{addr("10.9.9.9:1")}, balancer.NewSubConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// a flaps out and back within the timeout: not an orphan.
	c.ObserveResolverState(orphanState())
	time.Sleep(orphanTimeout / 3)
	c.ObserveResolverState(orphanState("10.0.0.1:1"))
	time.Sleep(3 * orphanTimeout)
	if n := m.Stats().Orphans; n != 0 || a.(*SubConn).Released() || other.(*SubConn).Released() {
		t.Fatalf("%d orphans after a flap and an address from elsewhere", n)
	}
	// Released by the child in time: not an orphan either.
	c.ObserveResolverState(orphanState())
	a.Shutdown()
	time.Sleep(3 * orphanTimeout)
	if n := m.Stats().Orphans; n != 0 || other.(*SubConn).Released() {
		t.Fatalf("%d orphans; the address from elsewhere released: %v", n, other.(*SubConn).Released())
	}
	other.Shutdown()
	if cc.sc(0).shutdowns.Load() != 1 || cc.sc(1).shutdowns.Load() != 1 {
		t.Fatal("not every SubConn shut down once")
	}
}

// TestOrphanOfOneSpellingWhileTheOtherIsListed: two spellings of one
// backend share a subchannel; the child forgets the SubConn of the spelling
// the resolver no longer lists, while the other spelling stays. That
// reference is an orphan (judged by the address the child asked for, not
// the shared key), reclaimed without shutting the subchannel the other
// SubConn still holds.
func TestOrphanOfOneSpellingWhileTheOtherIsListed(t *testing.T) {
	cc, _, c := newOrphanChild(t, ReclaimOrphans)
	plain, mapped := "10.0.0.1:1", "[::ffff:10.0.0.1]:1"
	c.ObserveResolverState(orphanState(plain, mapped))
	a, err := c.NewSubConn([]resolver.Address{addr(plain)}, balancer.NewSubConnOptions{StateListener: func(balancer.SubConnState) {}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.NewSubConn([]resolver.Address{addr(mapped)}, balancer.NewSubConnOptions{StateListener: func(balancer.SubConnState) {}})
	if err != nil {
		t.Fatal(err)
	}
	a.Connect()
	c.ObserveResolverState(orphanState(plain)) // the mapped spelling leaves; b is forgotten
	waitFor(t, "the forgotten spelling's reference to be reclaimed", func() bool { return b.(*SubConn).Released() })
	if a.(*SubConn).Released() || cc.sc(0).shutdowns.Load() != 0 {
		t.Fatal("the subchannel still held for the listed spelling was released or shut down")
	}
}

// After StopWatching nothing is judged: a SubConn whose address leaves the
// resolver state is the child's to shut down, however long it holds it.
func TestStopWatchingStopsJudging(t *testing.T) {
	cc, m, c := newOrphanChild(t, ReclaimOrphans)
	c.ObserveResolverState(orphanState("10.0.0.1:1"))
	h, err := c.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{StateListener: func(balancer.SubConnState) {}})
	if err != nil {
		t.Fatal(err)
	}
	c.ObserveResolverState(orphanState("10.0.0.9:1"))
	c.StopWatching()
	time.Sleep(5 * orphanTimeout)
	if n := m.Stats().Orphans; n != 0 || h.(*SubConn).Released() || cc.sc(0).shutdowns.Load() != 0 {
		t.Fatalf("after StopWatching: %d orphans, released %v; want none judged", n, h.(*SubConn).Released())
	}
	h.Shutdown()
}

// StopWatching before anything was judged, and twice, is a no-op.
func TestStopWatchingBeforeAnyJudgement(t *testing.T) {
	_, _, c := newOrphanChild(t, ReclaimOrphans)
	c.StopWatching()
	c.StopWatching()
	c.ObserveResolverState(orphanState("10.0.0.1:1")) // ignored once stopped
}
