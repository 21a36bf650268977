package xdse2e_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
	_ "google.golang.org/grpc/balancer/weightedroundrobin" // registers weighted_round_robin
)

// Timeouts of the guarded clusters: short, so that an orphan is reclaimed
// within a test.
const (
	guardOrphanTimeout = 300 * time.Millisecond
	guardDrainTimeout  = time.Second
	// guardRemovalBound bounds how long a removed backend's sockets may
	// stay open under the guard: the orphan timeout, the drain bound and
	// slack for a loaded machine.
	guardRemovalBound = guardOrphanTimeout + guardDrainTimeout + 2*time.Second
)

// guardPolicy is leakproof_guard running child, as a control plane selects
// it: a TypedStruct whose value is the guard's JSON config.
func guardPolicy(child string) xdsplane.Policy {
	return xdsplane.Policy{Name: guard.Name, Config: fmt.Sprintf(`{"childPolicy":[{%q:{}}],"orphanTimeout":%q,"drainTimeout":%q,"traceRingSize":64}`,
		child, guardOrphanTimeout.String(), guardDrainTimeout.String())}
}

// TestGuardChosenByTypedStruct: one control plane selects, per cluster,
// leakproof_guard over grpc's round_robin, leakproof_guard over grpc's
// weighted_round_robin, and the same two grpc policies bare (round_robin as
// grpc's own xDS round robin, weighted_round_robin through its TypedStruct),
// each on a pool of its own, and churns the endpoints of all four with EDS
// pushes under RPC load. Under the guard: at most one socket per backend,
// every removed backend at 0 sockets while the channel is open, one
// subchannel per added backend, no failed RPC, the baseline after close and
// a clean trace. The bare policies are measured and logged beside them.
func TestGuardChosenByTypedStruct(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	rounds := 4
	if heavy {
		rounds = 40
	}
	type arm struct {
		label   string
		policy  xdsplane.Policy
		guarded bool
		pool    []string
		target  string
		cl      *client
		s       *sampler
		stop    func() (int, int, error)
		slowest time.Duration
	}
	arms := []*arm{
		{label: "leakproof_guard(round_robin)", policy: guardPolicy("round_robin"), guarded: true},
		{label: "leakproof_guard(weighted_round_robin)", policy: guardPolicy("weighted_round_robin"), guarded: true},
		{label: "grpc's xDS round robin", policy: xdsplane.Policy{}},
		{label: "weighted_round_robin", policy: xdsplane.Policy{Name: "weighted_round_robin"}},
	}
	srv := startServer(t)
	for _, a := range arms {
		a.pool = e2e.Addrs(e2e.StartBackends(t, 4))
		a.target = name("guard")
	}
	resources := func(i int) xdsplane.Resources {
		var sets []xdsplane.Resources
		for _, a := range arms {
			sets = append(sets, service(t, a.target, xdsplane.ClusterSpec{Name: "c-" + a.target, Policy: a.policy, Localities: one(window(a.pool, i, 2)...)}))
		}
		return xdsplane.Merge(sets...)
	}
	publish(t, srv, resources(0))
	for _, a := range arms {
		a.cl = dial(t, srv, a.target, !a.guarded)
		a.cl.waitServed(window(a.pool, 0, 2)...)
	}
	for _, a := range arms {
		if got := len(a.cl.created()); a.guarded != (got > 0) {
			t.Fatalf("%s: %d backends with a leakproof subchannel: the cluster's policy is not the one the control plane selected", a.label, got)
		}
		a.s = sample(t, a.pool...)
		a.stop = a.cl.load()
	}
	for i := 1; i <= rounds; i++ {
		time.Sleep(200 * time.Millisecond)
		waitAcked(t, srv, xdsplane.EndpointType, publish(t, srv, resources(i)))
		for _, a := range arms {
			removed := a.pool[(i-1)%len(a.pool)]
			start := time.Now()
			if a.guarded {
				e2e.WaitSockets(t, removed, 0, guardRemovalBound) // released while the channel is open
			} else {
				e2e.WaitSockets(t, removed, 0, e2e.LongTimeout)
			}
			a.slowest = max(a.slowest, time.Since(start))
		}
	}
	for _, a := range arms {
		ok, failed, lastErr := a.stop()
		maxs := a.s.stop()
		created := 0
		for _, n := range a.cl.created() {
			created += n
		}
		t.Logf("%s: %d RPCs, %d failed (last: %v); max sockets per backend %v; removed backends released within %v; %d leakproof subchannels created",
			a.label, ok+failed, failed, lastErr, maxs, a.slowest.Round(time.Millisecond), created)
		if !a.guarded {
			continue
		}
		if failed > 0 {
			t.Errorf("%s: %d of %d RPCs failed under EDS churn (last: %v)", a.label, failed, ok+failed, lastErr)
		}
		for _, addr := range a.pool {
			if maxs[addr] > 1 {
				t.Errorf("%s: %d sockets to %s at once, want at most 1", a.label, maxs[addr], addr)
			}
		}
		// Two backends at the start, then one added per push.
		if created != 2+rounds {
			t.Errorf("%s: %d subchannels created over %d pushes, want %d (one per added backend)", a.label, created, rounds, 2+rounds)
		}
	}
	for _, a := range arms {
		a.cl.CC.Close()
	}
	for _, a := range arms {
		for _, addr := range a.pool {
			e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
		}
		if a.guarded {
			if rep := a.cl.Trace.CheckClean(t); len(rep.Orphans) != 0 {
				t.Errorf("%s: the guard judged %d subchannel(s) of a grpc policy orphans: %v", a.label, len(rep.Orphans), rep.Orphans)
			}
		}
	}
}

// TestGuardReclaimsUnderXDS: the control plane selects the deliberately
// leaky policy (it forgets a removed backend's SubConn without Shutdown)
// under leakproof_guard, and an EDS push removes one backend. The guard
// judges the forgotten subchannel an orphan once orphanTimeout passes and
// reclaims it: the removed backend's sockets reach 0 while the channel is
// open, leaktest names nothing, and the trace shows orphan, unref,
// shutdown and destroy for that backend, naming the leaky holder.
func TestGuardReclaimsUnderXDS(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	srv := startServer(t)
	target := name("guard-leaky")
	res := func(addrs ...string) xdsplane.Resources {
		return service(t, target, xdsplane.ClusterSpec{Name: "c-" + target, Policy: guardPolicy(leakzoo.ForgetRemoved), Localities: one(addrs...)})
	}
	publish(t, srv, res(a, b, c))
	cl := dial(t, srv, target, false)
	cl.waitServed(a, b, c)
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}

	removed := time.Now()
	waitAcked(t, srv, xdsplane.EndpointType, publish(t, srv, res(a, b)))
	e2e.WaitSockets(t, c, 0, guardRemovalBound)
	t.Logf("sockets to the removed backend reached 0 %v after the EDS push, channel open", time.Since(removed).Round(time.Millisecond))
	cl.waitServed(a, b)
	rec := &recorder{}
	leaktest.VerifyNone(rec, base, leaktest.Backends(c), leaktest.Deadline(time.Second))
	if named := lines(rec.errs, "to backend "+c); len(named) != 0 {
		t.Errorf("leaktest names %s under the guard: %s", c, named[0])
	}
	ev := cl.Trace.WaitFor(t, "destroy of the removed backend's subchannel", func(ev []trace.Event) bool {
		return slices.Contains(kindsOf(ev, c), trace.KindDestroy)
	})
	want := []trace.Kind{trace.KindCreate, trace.KindRef, trace.KindOrphan, trace.KindUnref, trace.KindShutdown, trace.KindDestroy}
	if got := kindsOf(ev, c); !slices.Equal(got, want) {
		t.Errorf("trace of %s: %v, want %v\n%s", c, got, want, e2e.Format(ev))
	}
	for _, addr := range []string{a, b} {
		if n := e2e.Sockets(t, addr); n != 1 {
			t.Errorf("%d sockets to %s, want 1", n, addr)
		}
	}

	cl.CC.Close()
	for _, addr := range []string{a, b, c} {
		e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
	}
	rep := cl.Trace.CheckClean(t)
	if len(rep.Orphans) != 1 || rep.Orphans[0].Key != c || !strings.Contains(rep.Orphans[0].Message, `holder "`+leakzoo.ForgetRemoved+`"`) {
		t.Errorf("trace orphans %v, want one naming %s and the leaky holder", rep.Orphans, c)
	}
}

// kindsOf returns the ownership events of the subchannels to key, in
// order (state changes and connects left out).
func kindsOf(ev []trace.Event, key string) []trace.Kind {
	var out []trace.Kind
	for _, e := range ev {
		if e.Key == key && e.Kind != trace.KindState && e.Kind != trace.KindConnect && e.Kind != trace.KindSocketOpen && e.Kind != trace.KindSocketClose {
			out = append(out, e.Kind)
		}
	}
	return out
}

// TestGuardPriorityCache measures what the guard's orphan rule does with
// grpc's priority policy caching a demoted child. Each priority runs its
// own leakproof_guard (orphanTimeout 300ms). Backend A is priority 0, B
// priority 1; A stops, RPCs fail over to B, A comes back and RPCs return to
// A: the priority-1 child is stopped and kept in grpc's cache, with its
// subchannel and socket to B, for up to 15 minutes. An EDS push then lists
// B nowhere. The cached child gets no update (grpc does not update a child
// that is not running), so its guard still holds the resolver state that
// listed B: nothing is judged orphan, and B keeps its socket well past
// orphanTimeout, until the channel closes (or the cache expires). The trace
// is clean and names no orphan.
func TestGuardPriorityCache(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	srv := startServer(t)
	target := name("guard-prio")
	spec := func(locs ...xdsplane.Locality) xdsplane.Resources {
		return service(t, target, xdsplane.ClusterSpec{Name: "c-" + target, Policy: guardPolicy("round_robin"), Localities: locs})
	}
	publish(t, srv, spec(xdsplane.Locality{Name: "p0", Priority: 0, Endpoints: []string{a}}, xdsplane.Locality{Name: "p1", Priority: 1, Endpoints: []string{b}}))
	cl := dial(t, srv, target, false)
	cl.waitServed(a)

	bs[0].Stop()
	cl.waitServed(b) // failover
	if err := bs[0].Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(e2e.LongTimeout)
	for { // back to priority 0 once A reconnects
		if got, _ := cl.served(1); got[a] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RPCs never returned to the priority-0 backend")
		}
		time.Sleep(20 * time.Millisecond)
	}
	v := publish(t, srv, spec(xdsplane.Locality{Name: "p0", Priority: 0, Endpoints: []string{a}}))
	waitAcked(t, srv, xdsplane.EndpointType, v)
	removed := time.Now()
	// Well past the point where an orphan would have been reclaimed.
	time.Sleep(guardRemovalBound)
	held := maxSockets(t, 200*time.Millisecond, b)[b]
	t.Logf("%d socket(s) to B %v after EDS stopped listing it (orphanTimeout %v): the cached priority-1 child holds it", held, time.Since(removed).Round(time.Millisecond), guardOrphanTimeout)
	if held != 1 {
		t.Errorf("%d sockets to the demoted priority-1 backend after it left EDS, measured 1 (grpc's child cache, not judged by the guard) when this was written", held)
	}
	for _, e := range cl.Trace.Events() {
		if e.Kind == trace.KindOrphan {
			t.Errorf("the guard judged an orphan: %v (measured none when this was written: the cached child's guard never sees the push)", e)
		}
	}
	if got, errs := cl.served(10); len(errs) != 0 || got[a] != 10 {
		t.Errorf("served %v (errors %v), want all on %s", got, errs, a)
	}
	cl.CC.Close()
	e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	e2e.WaitSockets(t, b, 0, e2e.LongTimeout)
	if rep := cl.Trace.CheckClean(t); len(rep.Orphans) != 0 {
		t.Errorf("trace orphans %v, want none", rep.Orphans)
	}
}
