package subconn

import (
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

func TestAcquireSharesOneSubConnAndShutsDownOnceAtZero(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	const n = 10
	var hs []*SubConn
	for i := range n {
		h, err := m.Acquire(addr("10.0.0.1:1"), "holder")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(m.Snapshot()); got != 1 {
			t.Fatalf("after %d acquires: %d subchannels, want 1", i+1, got)
		}
		hs = append(hs, h)
	}
	if got := cc.newSubConnCalls(); got != 1 {
		t.Fatalf("NewSubConn called %d times for one key, want 1", got)
	}
	if got := m.Snapshot()[0].Refs; got != n {
		t.Fatalf("refs = %d, want %d", got, n)
	}
	sc := cc.sc(0)
	for i, h := range hs[:n-1] {
		if err := h.Release("done"); err != nil {
			t.Fatal(err)
		}
		if sc.shutdowns.Load() != 0 {
			t.Fatalf("Shutdown after %d of %d releases", i+1, n)
		}
	}
	if err := hs[n-1].Release("done"); err != nil {
		t.Fatal(err)
	}
	if got := sc.shutdowns.Load(); got != 1 {
		t.Fatalf("Shutdown called %d times at zero refs, want 1", got)
	}
	if got := len(m.Snapshot()); got != 0 {
		t.Fatalf("%d subchannels left after the last release", got)
	}
	cc.checkViolations(t)
}

func TestKeyIsAddrServerNameAttributes(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	base := resolver.Address{Addr: "10.0.0.1:1"}
	withBalAttr := base
	withBalAttr.BalancerAttributes = attributes.New("weight", 3)
	withSN := base
	withSN.ServerName = "other"
	withAttr := base
	withAttr.Attributes = attributes.New("zone", "a")
	withAttrAgain := base
	withAttrAgain.Attributes = attributes.New("zone", "a")

	for _, a := range []resolver.Address{base, withBalAttr, withSN, withAttr, withAttrAgain} {
		if _, err := m.Acquire(a, "h"); err != nil {
			t.Fatal(err)
		}
	}
	// base and withBalAttr share; withSN and withAttr are distinct keys;
	// withAttrAgain equals withAttr.
	if got := cc.newSubConnCalls(); got != 3 {
		t.Fatalf("NewSubConn called %d times, want 3", got)
	}
	keys := map[string]int{}
	for _, s := range m.Snapshot() {
		keys[s.Key] = s.Refs
	}
	want := map[string]int{"10.0.0.1:1": 2, "10.0.0.1:1/other": 1, `10.0.0.1:1 {"zone": "a" }`: 2}
	if !maps.Equal(keys, want) {
		t.Fatalf("keys and refs = %v, want %v", keys, want)
	}
}

func TestStampedAddressMapsBackToItsKey(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	h, err := m.Acquire(addr("10.0.0.1:1"), "a")
	if err != nil {
		t.Fatal(err)
	}
	// The parent sees the address unchanged (it may look it up); the stamp
	// goes only into grpc's own subchannel, for the dialer. An address that
	// carries a stamp (a child that echoes grpc's address back) must still
	// map to its key, not make a second subchannel.
	if recordOf(cc.sc(0).addr) != nil {
		t.Fatal("the address passed to the parent's NewSubConn carries the owner stamp")
	}
	stamped := cc.sc(0).addr
	stamped.Attributes = stamped.Attributes.WithValue(ownerKey{}, h.rec)
	h2, err := m.Acquire(stamped, "b")
	if err != nil {
		t.Fatal(err)
	}
	if h2.rec.id != h.rec.id || cc.newSubConnCalls() != 1 {
		t.Fatalf("stamped address made a new subchannel (ids %d, %d; NewSubConn %d)", h.rec.id, h2.rec.id, cc.newSubConnCalls())
	}
}

func TestBadInputIsAnErrorNotAPanic(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)

	cc.newErr["10.0.0.9:1"] = errors.New("boom")
	if _, err := m.Acquire(addr("10.0.0.9:1"), "h"); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Acquire when NewSubConn fails: err = %v, want it wrapped", err)
	}
	if got := len(m.Snapshot()); got != 0 {
		t.Errorf("failed acquires left %d subchannels", got)
	}

	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Release("once"); err != nil {
		t.Fatal(err)
	}
	err = h.Release("twice")
	if !errors.Is(err, ErrReleased) {
		t.Fatalf("double release: err = %v, want ErrReleased", err)
	}
	if !strings.Contains(err.Error(), "10.0.0.1:1") || !strings.Contains(err.Error(), `"h"`) {
		t.Errorf("double release error %q does not name the key and holder", err)
	}
	h.Shutdown() // logged no-op
	if got := cc.sc(0).shutdowns.Load(); got != 1 {
		t.Fatalf("Shutdown called %d times after double release, want 1", got)
	}
	h.Connect() // after release: ignored
	if got := cc.sc(0).connects.Load(); got != 0 {
		t.Fatalf("Connect after release reached the SubConn")
	}

	h2, err := m.Acquire(addr("10.0.0.2:1"), "h2")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err == nil {
		t.Error("Close with an unreleased holder returned nil")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := h2.Release("late"); !errors.Is(err, ErrReleased) || !strings.Contains(err.Error(), "after the manager closed") {
		t.Errorf("release after close: err = %v", err)
	}
	if _, err := m.Acquire(addr("10.0.0.3:1"), "late"); !errors.Is(err, ErrClosed) {
		t.Errorf("acquire after close: err = %v, want ErrClosed", err)
	}
	for _, s := range m.Snapshot() {
		if s.Refs < 0 {
			t.Errorf("negative refs: %+v", s)
		}
	}
	cc.checkViolations(t)
}

func TestCloseReportsUnreleasedHoldersAndShutsDownOnce(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	a, _ := m.Acquire(addr("10.0.0.1:1"), "endpoint[0]")
	_, _ = m.Acquire(addr("10.0.0.1:1"), "endpoint[1]")
	if err := a.Release("removed"); err != nil {
		t.Fatal(err)
	}
	err := m.Close()
	if err == nil || !strings.Contains(err.Error(), `"endpoint[1]"`) || !strings.Contains(err.Error(), "10.0.0.1:1") {
		t.Fatalf("Close error %v does not name the holder and key", err)
	}
	if strings.Contains(err.Error(), `"endpoint[0]"`) {
		t.Errorf("Close error names a holder that released: %v", err)
	}
	if got := cc.sc(0).shutdowns.Load(); got != 1 {
		t.Fatalf("Shutdown called %d times by Close, want 1", got)
	}
	var leak *trace.Event
	for _, e := range m.Trace() {
		if e.Kind == trace.KindLeak {
			leak = &e
		}
	}
	if leak == nil || leak.Holder != "endpoint[1]" || leak.Key != "10.0.0.1:1" {
		t.Fatalf("no leak event for endpoint[1] in trace: %v", leak)
	}
	if st := m.Stats(); st.Leaks != 1 || st.Created != 1 || st.Shutdowns != 1 || st.Destroyed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestConcurrentAcquireReleaseShutsDownExactlyOnce hammers a few keys from
// many goroutines; run it with -race. The fake ClientConn flags any moment a
// key has two SubConns that are not shut down, and any second Shutdown.
func TestConcurrentAcquireReleaseShutsDownExactlyOnce(t *testing.T) {
	cc := newFakeCC()
	sub := trace.Subscribe(1<<20, func(e *trace.Event) bool { return e.Target == "fake:///concurrent" })
	m := NewManager(cc, WithTarget("fake:///concurrent"))
	keys := []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1", "10.0.0.5:1"}
	const goroutines, ops = 8, 1500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			var held []*SubConn
			for range ops {
				if len(held) > 0 && rng.IntN(2) == 0 {
					i := rng.IntN(len(held))
					if err := held[i].Release("random"); err != nil {
						t.Error(err)
					}
					held = slices.Delete(held, i, i+1)
					continue
				}
				h, err := m.Acquire(addr(keys[rng.IntN(len(keys))]), "g")
				if err != nil {
					t.Error(err)
					continue
				}
				h.Connect()
				held = append(held, h)
			}
			for _, h := range held {
				if err := h.Release("end"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := m.Close(); err != nil {
		t.Fatalf("Close after every release: %v", err)
	}
	cc.checkViolations(t)
	for i := range cc.newSubConnCalls() {
		if got := cc.sc(i).shutdowns.Load(); got != 1 {
			t.Errorf("SubConn %d (%s): %d Shutdowns, want 1", i, cc.sc(i).addr.Addr, got)
		}
	}
	st := m.Stats()
	if st.Created != st.Shutdowns || st.Created != st.Destroyed || st.Refs != st.Unrefs {
		t.Errorf("stats do not balance: %+v", st)
	}
	sub.Close()
	if sub.Dropped() {
		t.Fatal("trace subscription dropped")
	}
	var events []trace.Event
	for e := range sub.Events() {
		events = append(events, e)
	}
	rep := trace.Check(events)
	if !rep.Clean() || uint64(rep.Destroyed) != st.Created {
		t.Errorf("trace check: %d destroyed of %d created, problems %v", rep.Destroyed, st.Created, rep.Problems)
	}
}

func TestStateFanOutReplayAndFinalShutdown(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	var r1, r2, r3 recorder
	h1, _ := m.Acquire(addr("10.0.0.1:1"), "one", WithStateListener(r1.listen))
	h2, _ := m.Acquire(addr("10.0.0.1:1"), "two", WithStateListener(r2.listen))
	sc := cc.sc(0)
	h1.Connect()
	h2.Connect()
	if got := sc.connects.Load(); got != 1 {
		t.Fatalf("two Connects while IDLE reached the SubConn %d times, want 1", got)
	}
	sc.push(connectivity.Connecting)
	sc.push(connectivity.Ready)
	want := []connectivity.State{connectivity.Connecting, connectivity.Ready}
	waitFor(t, "both holders see CONNECTING, READY", func() bool {
		return slices.Equal(r1.get(), want) && slices.Equal(r2.get(), want)
	})

	// A holder joining a READY subchannel is told it is READY.
	h3, _ := m.Acquire(addr("10.0.0.1:1"), "three", WithStateListener(r3.listen))
	waitFor(t, "the late holder sees READY", func() bool { return slices.Equal(r3.get(), []connectivity.State{connectivity.Ready}) })
	h3.Connect()
	if got := sc.connects.Load(); got != 1 {
		t.Fatalf("Connect on a READY subchannel reached the SubConn")
	}

	// A releasing holder gets one SHUTDOWN and nothing after it.
	if err := h1.Release("gone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SHUTDOWN to the released holder", func() bool { return len(r1.get()) == 3 })
	sc.push(connectivity.Idle)
	waitFor(t, "IDLE to the remaining holders", func() bool { return len(r2.get()) == 3 && len(r3.get()) == 2 })
	if got := r1.get(); got[2] != connectivity.Shutdown || len(got) != 3 {
		t.Fatalf("released holder saw %v, want [CONNECTING READY SHUTDOWN]", got)
	}

	// After the last release, updates from the shut-down SubConn are dropped.
	h2.Release("gone")
	h3.Release("gone")
	sc.push(connectivity.Shutdown)
	sc.push(connectivity.Connecting)
	waitFor(t, "final SHUTDOWNs", func() bool { return len(r2.get()) == 4 && len(r3.get()) == 3 })
	if got := r2.get(); got[3] != connectivity.Shutdown {
		t.Fatalf("holder two saw %v", got)
	}
}

func TestIdleAfterReadyIsAConnectionLossAndReconnectsTheSameSubConn(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	h, _ := m.Acquire(addr("10.0.0.1:1"), "rr", WithAutoReconnect())
	h.Connect()
	sc := cc.sc(0)
	sc.push(connectivity.Connecting)
	sc.push(connectivity.Ready)
	sc.push(connectivity.Idle) // GOAWAY or socket EOF
	if got := sc.connects.Load(); got != 2 {
		t.Fatalf("Connect calls = %d, want 2 (initial + reconnect on the same SubConn)", got)
	}
	if got := cc.newSubConnCalls(); got != 1 {
		t.Fatalf("NewSubConn calls = %d: a lost connection made a new SubConn", got)
	}
	var lost int
	for _, e := range m.Trace() {
		if e.Kind == trace.KindConnLost {
			lost++
			if e.Cause != trace.CauseUnknown || !strings.HasPrefix(e.Reason, string(trace.CauseUnknown)) {
				t.Errorf("without the dialer the cause should be %q, got %q", trace.CauseUnknown, e.Reason)
			}
		}
	}
	if lost != 1 {
		t.Fatalf("%d conn_lost events, want 1", lost)
	}
	if st := m.Stats(); st.ConnectionsLost[trace.CauseUnknown] != 1 {
		t.Errorf("ConnectionsLost = %v", st.ConnectionsLost)
	}

	// Without WithAutoReconnect the manager leaves it IDLE for the holder.
	h2, _ := m.Acquire(addr("10.0.0.2:1"), "pf")
	h2.Connect()
	sc2 := cc.sc(1)
	sc2.push(connectivity.Ready)
	sc2.push(connectivity.Idle)
	if got := sc2.connects.Load(); got != 1 {
		t.Fatalf("manager reconnected a subchannel nobody asked it to: %d Connects", got)
	}
	h.Release("x")
	h2.Release("x")
}

// TestAutoReconnectFollowsTheHolders: the manager reconnects on IDLE while
// some holder that asked for it still holds the subchannel, and only then.
func TestAutoReconnectFollowsTheHolders(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	plain, _ := m.Acquire(addr("10.0.0.1:1"), "plain")
	auto, _ := m.Acquire(addr("10.0.0.1:1"), "auto", WithAutoReconnect())
	plain.Connect()
	sc := cc.sc(0)
	sc.push(connectivity.Ready)
	sc.push(connectivity.Idle)
	if got := sc.connects.Load(); got != 2 {
		t.Fatalf("Connect calls = %d, want 2: the second holder asked for reconnect", got)
	}
	sc.push(connectivity.Ready)
	auto.Release("x")
	sc.push(connectivity.Idle)
	if got := sc.connects.Load(); got != 2 {
		t.Fatalf("Connect calls = %d, want 2: the holder that asked for reconnect had released", got)
	}
	plain.Release("x")
}

func TestHealthListenerFanOut(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	h1, _ := m.Acquire(addr("10.0.0.1:1"), "one")
	h2, _ := m.Acquire(addr("10.0.0.1:1"), "two")
	sc := cc.sc(0)
	var r1, r2 recorder
	h1.RegisterHealthListener(r1.listen) // not READY: ignored, as grpc does
	if sc.healthRegistrations() != 0 {
		t.Fatal("health listener registered on a subchannel that is not READY")
	}
	sc.push(connectivity.Ready)
	h1.RegisterHealthListener(r1.listen)
	h2.RegisterHealthListener(r2.listen)
	if got := sc.healthRegistrations(); got != 1 {
		t.Fatalf("%d health registrations on the real SubConn, want 1", got)
	}
	sc.pushHealth(connectivity.Ready)
	waitFor(t, "health READY to both", func() bool { return len(r1.get()) == 1 && len(r2.get()) == 1 })

	var r3 recorder
	h3, _ := m.Acquire(addr("10.0.0.1:1"), "three")
	h3.RegisterHealthListener(r3.listen)
	waitFor(t, "latest health replayed to a late holder", func() bool { return slices.Equal(r3.get(), []connectivity.State{connectivity.Ready}) })

	h2.RegisterHealthListener(nil) // drops only h2's listener
	sc.pushHealth(connectivity.TransientFailure)
	waitFor(t, "health TF to one and three", func() bool { return len(r1.get()) == 2 && len(r3.get()) == 2 })
	if got := len(r2.get()); got != 1 {
		t.Fatalf("a dropped health listener got %d updates, want 1", got)
	}

	// A state change ends the READY period: the old listener is stale.
	sc.push(connectivity.Idle)
	sc.pushHealth(connectivity.Ready)
	if got := len(r1.get()); got != 2 {
		t.Fatalf("stale health update delivered after a state change")
	}
	h1.Release("x")
	h2.Release("x")
	h3.Release("x")
}

func TestSetSync(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	var mu sync.Mutex
	seen := map[string][]connectivity.State{}
	s := m.NewSet("endpoint", func(sc *SubConn, st balancer.SubConnState) {
		mu.Lock()
		seen[sc.rec.key()] = append(seen[sc.rec.key()], st.ConnectivityState)
		mu.Unlock()
	})
	added, removed, err := s.Sync([]resolver.Address{addr("a:1"), addr("b:1"), addr("a:1"), addr("c:1")})
	if err != nil || len(added) != 3 || len(removed) != 0 {
		t.Fatalf("first Sync: added %d removed %d err %v; want 3, 0, nil", len(added), len(removed), err)
	}
	if s.size() != 3 || cc.newSubConnCalls() != 3 {
		t.Fatalf("set holds %d, NewSubConn %d; want 3, 3", s.size(), cc.newSubConnCalls())
	}
	scA := cc.sc(0)
	added, removed, err = s.Sync([]resolver.Address{addr("b:1"), addr("c:1"), addr("d:1")})
	if err != nil || len(added) != 1 || len(removed) != 1 || removed[0].rec.key() != "a:1" || added[0].rec.key() != "d:1" {
		t.Fatalf("second Sync: added %v removed %v err %v", added, removed, err)
	}
	if scA.shutdowns.Load() != 1 {
		t.Fatal("the removed address was not shut down")
	}
	if _, ok := s.get(addr("a:1")); ok {
		t.Fatal("Get found a removed address")
	}
	got, ok := s.get(addr("d:1"))
	if !ok {
		t.Fatal("Get did not find d:1")
	}
	cc.sc(3).push(connectivity.Ready)
	waitFor(t, "the set listener sees d:1 READY", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(seen["d:1"], []connectivity.State{connectivity.Ready})
	})
	_ = got

	// Unchanged list: nothing acquired or released.
	before := cc.newSubConnCalls()
	added, removed, _ = s.Sync([]resolver.Address{addr("d:1"), addr("c:1"), addr("b:1")})
	if len(added)+len(removed) != 0 || cc.newSubConnCalls() != before {
		t.Fatal("Sync of the same set changed something")
	}

	// Errors are joined; the rest is held.
	cc.newErr["e:1"] = errors.New("no e")
	_, _, err = s.Sync([]resolver.Address{addr("e:1"), addr("f:1")})
	if err == nil || !strings.Contains(err.Error(), "no e") {
		t.Fatalf("Sync err = %v, want the NewSubConn error", err)
	}
	if s.size() != 1 {
		t.Fatalf("set holds %d after a partial Sync, want 1 (f:1)", s.size())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Sync(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("manager Close after the set closed: %v", err)
	}
	cc.checkViolations(t)
}

func TestTraceRecordsLifecycleAndChecksClean(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(100))
	h, _ := m.Acquire(addr("10.0.0.1:1"), "one")
	h.Connect()
	cc.sc(0).push(connectivity.Connecting)
	cc.sc(0).push(connectivity.Ready)
	h.Release("removed")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var kinds []trace.Kind
	for _, e := range m.Trace() {
		kinds = append(kinds, e.Kind)
	}
	want := []trace.Kind{trace.KindManagerOpen, trace.KindCreate, trace.KindRef, trace.KindConnect, trace.KindState, trace.KindState, trace.KindUnref, trace.KindShutdown, trace.KindDestroy, trace.KindManagerClose}
	if !slices.Equal(kinds, want) {
		t.Fatalf("trace kinds = %v\nwant %v", kinds, want)
	}
	rep := trace.Check(m.Trace())
	if !rep.Clean() || rep.Destroyed != 1 || rep.Subchannels != 1 {
		t.Fatalf("trace.Check = %+v", rep)
	}
}

func TestTraceOffBuildsNoEvents(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	defer m.Close()
	h, _ := m.Acquire(addr("10.0.0.1:1"), "one")
	h.Release("x")
	if got := len(m.Trace()); got != 0 {
		t.Fatalf("ring of size 0 holds %d events", got)
	}
	// With a subscriber, events flow even with no ring.
	sub := trace.Subscribe(16, func(e *trace.Event) bool { return e.Manager == m.ID() })
	defer sub.Close()
	h, _ = m.Acquire(addr("10.0.0.1:1"), "two")
	h.Release("x")
	var got []trace.Kind
	for len(got) < 5 {
		<-sub.Ready()
		batch, _ := sub.Read(nil)
		for _, e := range batch {
			got = append(got, e.Kind)
		}
	}
	if !slices.Equal(got, []trace.Kind{trace.KindCreate, trace.KindRef, trace.KindUnref, trace.KindShutdown, trace.KindDestroy}) {
		t.Fatalf("subscriber got %v", got)
	}
}

// TestSkippedReleaseIsNamed breaks the invariant on purpose: a holder never
// releases. The snapshot, Close and the trace checker each name the
// subchannel by id and key.
func TestSkippedReleaseIsNamed(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	kept, _ := m.Acquire(addr("10.0.0.7:1"), "forgetful")
	other, _ := m.Acquire(addr("10.0.0.8:1"), "tidy")
	other.Release("done")

	snap := m.Snapshot()
	if len(snap) != 1 || snap[0].ID != kept.rec.id || snap[0].Holders[0] != "forgetful" {
		t.Fatalf("snapshot = %+v, want only the forgotten subchannel", snap)
	}
	before := trace.Check(m.Trace())
	if !before.Clean() || before.Live != 1 {
		t.Fatalf("while the manager is open a held subchannel is live, not leaked: %+v", before)
	}
	err := m.Close()
	if err == nil || !strings.Contains(err.Error(), "10.0.0.7:1") {
		t.Fatalf("Close = %v, want it to name 10.0.0.7:1", err)
	}
	rep := trace.Check(m.Trace())
	if len(rep.Problems) != 1 {
		t.Fatalf("problems = %v, want exactly one", rep.Problems)
	}
	p := rep.Problems[0]
	if p.Kind != trace.ProblemHolderLeak || p.Subchannel != kept.rec.id || p.Key != "10.0.0.7:1" || !strings.Contains(p.Message, "forgetful") {
		t.Fatalf("problem = %v", p)
	}
}

func TestMetricsThroughTheChannelRecorder(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///metrics"))
	rec := cc.metrics
	a, _ := m.Acquire(addr("10.0.0.1:1"), "one", WithAutoReconnect())
	_, _ = m.Acquire(addr("10.0.0.2:1"), "forgetful")
	g := rec.gauges()
	if g[MetricSubchannelsOpen+" fake:///metrics"] != 2 || g[MetricSocketsOpen+" fake:///metrics"] != 0 {
		t.Fatalf("gauges = %v", g)
	}
	sc := cc.sc(0)
	sc.push(connectivity.Ready)
	sc.push(connectivity.Idle)
	if n := rec.count(MetricConnectionsLost + " fake:///metrics unknown"); n != 1 {
		t.Fatalf("connections_lost{unknown} = %d, want 1 (counts %v)", n, rec.counts)
	}
	a.Release("done")
	if g := rec.gauges(); g[MetricSubchannelsOpen+" fake:///metrics"] != 1 {
		t.Fatalf("after a release: gauges = %v", g)
	}
	// A second manager on the same channel (a parent with two children)
	// adds to the same series.
	m2 := NewManager(cc, WithTarget("fake:///metrics"))
	b, _ := m2.Acquire(addr("10.0.0.3:1"), "other")
	if g := rec.gauges(); g[MetricSubchannelsOpen+" fake:///metrics"] != 2 {
		t.Fatalf("with a second manager: gauges = %v, want 2 subchannels", g)
	}
	m.Close() // "forgetful" never released
	if n := rec.count(MetricLeaks + " fake:///metrics unreleased_holder"); n != 1 {
		t.Fatalf("leaks{unreleased_holder} = %d, want 1", n)
	}
	if g := rec.gauges(); g[MetricSubchannelsOpen+" fake:///metrics"] != 1 {
		t.Fatalf("after the first manager closed: gauges = %v, want the second's 1 subchannel", g)
	}
	b.Release("done")
	m2.Close()
	// Everything closed: the series read 0.
	if g := rec.gauges(); g[MetricSubchannelsOpen+" fake:///metrics"] != 0 || g[MetricSocketsOpen+" fake:///metrics"] != 0 {
		t.Fatalf("after Close: gauges = %v, want both at 0", g)
	}
	if n := rec.asyncReporters(); n != 0 {
		t.Fatalf("%d asynchronous reporters registered with the channel's recorder, want none", n)
	}
}

// TestStateListenerDeliversBeforeReturning checks that grpc's call of a
// SubConn's StateListener has delivered the update to every holder when it
// returns, even while the manager's own goroutine is still delivering
// something a holder's call queued (here a released holder's final SHUTDOWN,
// whose listener is slow). grpc's pickfirst and the parents above it read
// the picker right after a state update; a late update shows them a stale
// one.
func TestStateListenerDeliversBeforeReturning(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()

	entered, gate := make(chan struct{}), make(chan struct{})
	gone, err := m.Acquire(addr("10.0.0.1:1"), "slow", WithStateListener(func(s balancer.SubConnState) {
		if s.ConnectivityState == connectivity.Shutdown {
			close(entered)
			<-gate
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	if _, err := m.Acquire(addr("10.0.0.2:1"), "watcher", WithStateListener(r.listen)); err != nil {
		t.Fatal(err)
	}

	// The release queues the final SHUTDOWN and leaves it to the manager's
	// goroutine (a holder's own call never runs listeners); wait until that
	// goroutine is inside the slow listener.
	if err := gone.Release("removed"); err != nil {
		t.Fatal(err)
	}
	<-entered
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(gate)
	}()

	sc := cc.sc(1)
	sc.push(connectivity.Connecting)
	if got := r.get(); !slices.Equal(got, []connectivity.State{connectivity.Connecting}) {
		t.Fatalf("when the StateListener returned the holder had seen %v, want [CONNECTING]", got)
	}
	// With nothing else running, delivery is synchronous as before.
	sc.push(connectivity.Ready)
	if got := r.get(); !slices.Equal(got, []connectivity.State{connectivity.Connecting, connectivity.Ready}) {
		t.Fatalf("when the StateListener returned the holder had seen %v, want [CONNECTING READY]", got)
	}
}

// TestStateListenerTakesOverAQueuedDelivery checks the same when the
// manager's goroutine has been started for a holder's call but has not run
// yet: the StateListener call delivers everything queued, in order.
func TestStateListenerTakesOverAQueuedDelivery(t *testing.T) {
	for i := range 200 { // the goroutine's start races with the push: try many times
		cc := newFakeCC()
		m := NewManager(cc)
		var gone, watcher recorder
		h, _ := m.Acquire(addr("10.0.0.1:1"), "gone", WithStateListener(gone.listen))
		if _, err := m.Acquire(addr("10.0.0.2:1"), "watcher", WithStateListener(watcher.listen)); err != nil {
			t.Fatal(err)
		}
		h.Release("removed")
		cc.sc(1).push(connectivity.Connecting)
		if got := watcher.get(); !slices.Equal(got, []connectivity.State{connectivity.Connecting}) {
			t.Fatalf("try %d: when the StateListener returned the holder had seen %v, want [CONNECTING]", i, got)
		}
		if got := gone.get(); !slices.Equal(got, []connectivity.State{connectivity.Shutdown}) {
			t.Fatalf("try %d: the released holder saw %v, want [SHUTDOWN] before the later update", i, got)
		}
		m.Close()
	}
}
