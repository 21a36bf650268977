package soak

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/testbackend"
)

// TestJudgeSamplesArePreallocatedAndSpared: the run makes its kept samples'
// slice and maxKept+2 spares up front, and hands spares out until none is
// left, then empty samples.
func TestJudgeSamplesArePreallocatedAndSpared(t *testing.T) {
	for _, compare := range []bool{false, true} {
		r := &runner{}
		r.preallocateSamples([]string{"b0", "b1"}, compare)
		if len(r.samples) != 0 || cap(r.samples) != maxKept+1 || len(r.sampling.spare) != maxKept+2 {
			t.Fatalf("compare %v: %d/%d samples and %d spares, want 0/%d and %d", compare, len(r.samples), cap(r.samples), len(r.sampling.spare), maxKept+1, maxKept+2)
		}
		for i := maxKept + 2; i > 0; i-- {
			s := r.spareLocked()
			if s.Sockets == nil || s.BackendFDs == nil || s.BackendConns == nil || (s.CompareSockets != nil) != compare || len(s.Sockets) != 0 {
				t.Fatalf("compare %v: spare %d has maps %v %v %v %v", compare, i, s.Sockets, s.BackendFDs, s.BackendConns, s.CompareSockets)
			}
			if len(r.sampling.spare) != i-1 {
				t.Fatalf("%d spares left after taking one of %d", len(r.sampling.spare), i)
			}
		}
		if s := r.spareLocked(); s.Sockets != nil || s.BackendFDs != nil {
			t.Fatalf("no spare left, yet a sample with maps: %+v", s)
		}
	}
}

// TestJudgeKeptSamplesThinEvenly: up to maxKept samples all are kept; past
// it, every other one is dropped (its maps cleared and spared), and from
// then on the multiples of the doubled stride are kept, and the latest.
func TestJudgeKeptSamplesThinEvenly(t *testing.T) {
	r := &runner{}
	take := func(i int) {
		r.keepLocked(Sample{At: jsontime.Duration(i), Sockets: map[string]int{"b0": i + 1}})
	}
	for i := range 5 {
		take(i)
	}
	for i, s := range r.samples {
		if int(s.At) != i {
			t.Fatalf("first samples kept: %v", r.samples)
		}
	}
	if len(r.samples) != 5 {
		t.Fatalf("%d of the first 5 samples kept", len(r.samples))
	}
	for i := 5; i < maxKept+2; i++ {
		take(i)
	}
	// maxKept+2 samples: 0..maxKept-1 all kept, thinned at maxKept to the
	// even ones, then maxKept kept (a multiple of 2) and maxKept+1 as the
	// latest.
	if len(r.samples) != maxKept/2+2 || r.sampling.stride != 2 {
		t.Fatalf("%d samples kept at stride %d, want %d at stride 2", len(r.samples), r.sampling.stride, maxKept/2+2)
	}
	for i, s := range r.samples[:len(r.samples)-1] {
		if int(s.At) != 2*i || s.Sockets["b0"] != 2*i+1 {
			t.Fatalf("kept sample %d at %d with %v, want at %d", i, s.At, s.Sockets, 2*i)
		}
	}
	if last := r.samples[len(r.samples)-1]; int(last.At) != maxKept+1 {
		t.Fatalf("latest kept at %d, want %d", last.At, maxKept+1)
	}
	if len(r.sampling.spare) != maxKept/2 {
		t.Fatalf("%d spares after dropping %d samples", len(r.sampling.spare), maxKept/2)
	}
	for _, s := range r.sampling.spare {
		if s.Sockets == nil || len(s.Sockets) != 0 {
			t.Fatalf("a dropped sample's map was not cleared for reuse: %v", s.Sockets)
		}
	}
	// The latest, not on the stride, gives way to the next one.
	take(maxKept + 2)
	if len(r.samples) != maxKept/2+2 || int(r.samples[len(r.samples)-1].At) != maxKept+2 || len(r.sampling.spare) != maxKept/2+1 {
		t.Fatalf("after %d: %d kept, latest %d, %d spares", maxKept+2, len(r.samples), r.samples[len(r.samples)-1].At, len(r.sampling.spare))
	}
	take(maxKept + 3)
	if len(r.samples) != maxKept/2+3 || int(r.samples[len(r.samples)-2].At) != maxKept+2 {
		t.Fatalf("after %d: %d kept, want %d", maxKept+3, len(r.samples), maxKept/2+3)
	}
	// At stride 2 the kept samples fill up again by sample 2*maxKept-2: the
	// next sample thins them at once, off the stride as it is.
	for i := maxKept + 4; i < 2*maxKept; i++ {
		take(i)
	}
	if len(r.samples) != maxKept/2+1 || r.sampling.stride != 4 || int(r.samples[maxKept/2-1].At) != 2*maxKept-4 || int(r.samples[maxKept/2].At) != 2*maxKept-1 {
		t.Fatalf("after %d samples: %d kept at stride %d", 2*maxKept, len(r.samples), r.sampling.stride)
	}
}

// TestJudgeStreaksCountSamplesInARow: a condition fails on its n-th sample
// in a row, once, and a break starts the count again; the backends' open
// streak spans the removal bound, at least inRunStreak.
func TestJudgeStreaksCountSamplesInARow(t *testing.T) {
	w := newInRun()
	var got []bool
	for _, holds := range []bool{true, true, true, true, false, true, true, true} {
		got = append(got, w.failing("k", holds))
	}
	if want := fmt.Sprint([]bool{false, false, true, false, false, false, false, true}); fmt.Sprint(got) != want {
		t.Errorf("failing = %v, want %v", got, want)
	}
	if w.failing("other key", true) {
		t.Error("a key's streak counted another's")
	}
	for _, tc := range []struct {
		drain, slack, every time.Duration
		want                int
	}{
		{time.Second, time.Second, 200 * time.Millisecond, 11},
		{time.Second, time.Second, 500 * time.Millisecond, 5},
		{100 * time.Millisecond, 0, 200 * time.Millisecond, inRunStreak},
	} {
		r := &runner{cfg: Config{DrainTimeout: tc.drain, RemovalSlack: tc.slack, SampleInterval: tc.every}}
		if got := r.openStreak(); got != tc.want {
			t.Errorf("openStreak(%v+%v every %v) = %d, want %d", tc.drain, tc.slack, tc.every, got, tc.want)
		}
	}
}

// TestJudgeHeldConnectionsAllowedOnlyWhileFrozen: only the frozen backend,
// only in the freeze phase, may hold a connection per client socket and
// one in flight.
func TestJudgeHeldConnectionsAllowedOnlyWhileFrozen(t *testing.T) {
	freeze := &phaseRun{Phase: Phase{Fault: FaultFreeze}}
	other := &phaseRun{Phase: Phase{Fault: FaultGoAway}}
	for _, tc := range []struct {
		role string
		p    *phaseRun
		want int
	}{
		{roleFrozen, freeze, 4 + heldSlack},
		{roleFrozen, other, 0},
		{roleFrozen, nil, 0},
		{"regular", freeze, 0},
	} {
		if got := allowedHeld(tc.role, tc.p, 4); got != tc.want {
			t.Errorf("allowedHeld(%s, %v, 4) = %d, want %d", tc.role, tc.p, got, tc.want)
		}
	}
}

// observer is a runner for the in-run checks fed recorded samples: two
// backends (one frozen), their logged lines kept.
type observer struct {
	r    *runner
	mu   sync.Mutex
	logs []string
}

func newObserver() *observer {
	o := &observer{}
	o.r = &runner{
		cfg: Config{Workers: 3, Streams: 2, DrainTimeout: time.Second, RemovalSlack: time.Second, SampleInterval: 500 * time.Millisecond,
			Logf: func(format string, args ...any) {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.logs = append(o.logs, fmt.Sprintf(format, args...))
			}},
		inRun: newInRun(),
	}
	o.r.info = []BackendInfo{{Name: "b0", Role: "regular"}, {Name: "frozen", Role: roleFrozen}}
	o.r.names = map[netip.AddrPort]string{
		netip.MustParseAddrPort("127.0.0.1:1"): "b0",
		netip.MustParseAddrPort("127.0.0.1:2"): "frozen",
	}
	return o
}

func (o *observer) logged(substr string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, l := range o.logs {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// sample is a recorded sample at sec seconds: 20 goroutines and 10 unowned
// descriptors unless changed.
func sample(sec float64, phase Fault) Sample {
	return Sample{At: jsontime.Duration(time.Duration(sec * float64(time.Second))), Phase: phase, Goroutines: 20, OtherFDs: 10,
		BackendConns: map[string]int{}, BackendFDs: map[string]int{}, Held: map[string]int{}}
}

// TestJudgeBackendsHoldOnlyWhatThePhaseAllows: a backend holding
// connections its phase does not allow, or keeping more open than its
// clients hold sockets to it, fails on the streak's sample, naming the
// backend, the sample and the counts; at the limit it passes.
func TestJudgeBackendsHoldOnlyWhatThePhaseAllows(t *testing.T) {
	o := newObserver()
	r := o.r
	sc := &socketCount{total: map[string]int{"b0": 2, "frozen": 1}}
	freeze := &phaseRun{Phase: Phase{Fault: FaultFreeze}}
	r.cur = freeze
	for i := range 3 {
		s := sample(float64(i), FaultFreeze)
		s.Held["frozen"] = 1 + heldSlack // allowed: a socket and one in flight
		s.BackendConns["b0"] = 2 + openSlack
		r.observe(s, sc, 1)
	}
	c := r.inRun.backendCheck()
	if !c.Pass || c.Detail != "on every sample, no backend held more connections than its phase allows, nor kept more open than its clients; most held at once: frozen:2" {
		t.Fatalf("at the limits: pass %v: %s", c.Pass, c.Detail)
	}
	if got := newInRun().backendCheck().Detail; !strings.HasSuffix(got, "most held at once: -") {
		t.Errorf("nothing held: %s", got)
	}
	r.cur = nil
	for i := range 3 {
		s := sample(float64(3+i), "")
		s.Held["frozen"] = 1
		r.observe(s, sc, 1)
	}
	c = r.inRun.backendCheck()
	want := "backend frozen holds 1 connection(s) at 5.0s, the phase allows 0 (1 client socket(s) to it)"
	if c.Pass || c.Detail != want {
		t.Fatalf("held after the freeze: pass %v: %q, want %q", c.Pass, c.Detail, want)
	}
	if o.logged("LEAK (backend connections explained): "+want) != 1 {
		t.Errorf("not logged once: %q", o.logs)
	}
	for i := range r.openStreak() {
		s := sample(float64(6+i), FaultGoAway)
		s.BackendConns["b0"] = 3 + openSlack
		r.observe(s, sc, 1)
	}
	c = r.inRun.backendCheck()
	want2 := fmt.Sprintf("backend b0 has 5 connection(s) open at %.1fs (goaway), its clients 2 socket(s)", float64(6+r.openStreak()-1))
	if c.Pass || c.Detail != want+"; "+want2 {
		t.Fatalf("open over the clients' sockets: %q, want %q", c.Detail, want+"; "+want2)
	}
	if len(r.inRun.backendFails) != 2 || o.logged("LEAK (backend connections explained): "+want2) != 1 {
		t.Errorf("fails %q, logs %q", r.inRun.backendFails, o.logs)
	}
}

// TestJudgeBackendMayKeepItsSlackOpen: a backend may keep openSlack
// connections beyond its clients' sockets for as long as it likes (accepts
// racing the reading), a held one beyond the frozen backend's allowance
// never.
func TestJudgeBackendMayKeepItsSlackOpen(t *testing.T) {
	o := newObserver()
	sc := &socketCount{total: map[string]int{"b0": 2}}
	for i := range 3 * o.r.openStreak() {
		s := sample(float64(i), "")
		s.BackendConns["b0"] = 2 + openSlack
		o.r.observe(s, sc, 1)
	}
	if c := o.r.inRun.backendCheck(); !c.Pass {
		t.Errorf("%d connections open to 2 client sockets for %d samples failed: %s", 2+openSlack, 3*o.r.openStreak(), c.Detail)
	}
}

// TestJudgeListsAreBounded: the evidence lists stop at maxListed, and a
// backend that keeps connections open is not listed past it.
func TestJudgeListsAreBounded(t *testing.T) {
	w := newInRun()
	for i := range maxListed + 3 {
		w.listBackend(fmt.Sprint(i))
		w.listClient(fmt.Sprint(i))
	}
	if len(w.backendFails) != maxListed || len(w.clientFails) != maxListed || w.backendFails[maxListed-1] != fmt.Sprint(maxListed-1) {
		t.Fatalf("%d backend and %d client lines kept, want %d", len(w.backendFails), len(w.clientFails), maxListed)
	}
	o := newObserver()
	o.r.inRun = w
	sc := &socketCount{total: map[string]int{}}
	for i := range o.r.openStreak() {
		s := sample(float64(i), "")
		s.BackendConns["b0"] = 9
		o.r.observe(s, sc, 0)
	}
	if len(w.backendFails) != maxListed || o.logged("has 9 connection(s) open") != 0 {
		t.Errorf("listed past the bound: %d lines, logs %q", len(w.backendFails), o.logs)
	}
}

// TestJudgeClientWithinItsBudget: unowned descriptors may exceed the first
// sample's by otherSlack, and goroutines the start plus the budget of live
// sockets (both sides), channels and load by goroutineSlack; one more, for
// a streak, fails with the counts.
func TestJudgeClientWithinItsBudget(t *testing.T) {
	o := newObserver()
	r := o.r
	sc := &socketCount{total: map[string]int{}}
	r.observe(sample(0, ""), sc, 0) // the start: 20 goroutines, 10 unowned
	budget := func(s *Sample, over int) {
		s.ClientFDs = 2
		s.BackendConns["b0"], s.BackendConns["frozen"] = 3, 1
		// 6 sockets, 2 channels, 5 load goroutines.
		s.Goroutines = 20 + goroutinesPerSocket*6 + goroutinesPerChannel*2 + goroutinesPerLoad*5 + goroutineSlack + over
	}
	for i := range 3 {
		s := sample(float64(1+i), "")
		s.OtherFDs = 10 + otherSlack
		budget(&s, 0)
		r.observe(s, sc, 2)
	}
	c := r.inRun.clientCheck()
	want := fmt.Sprintf("on every sample, descriptors owned by nobody within 32 of the start (most 42, 10 at the start) and goroutines within the budget of live sockets and channels (the most over the variable part +%d, slack 48)", goroutineSlack)
	if !c.Pass || c.Name != CheckClientBudget || c.Detail != want {
		t.Fatalf("at the limits: pass %v: %q\nwant %q", c.Pass, c.Detail, want)
	}
	for i := range 3 {
		s := sample(float64(4+i), FaultChurn)
		s.OtherFDs = 11 + otherSlack
		budget(&s, 1)
		r.observe(s, sc, 2)
	}
	c = r.inRun.clientCheck()
	g := 20 + 3*6 + 8*2 + 2*5 + 48 + 1
	want = fmt.Sprintf("43 descriptor(s) owned by no client channel and no backend at 6.0s (churn), 10 at the start; %d goroutines at 6.0s (churn): 49 more than 20 at the start plus 44 for 6 socket(s), 2 channel(s) and 5 load goroutine(s)", g)
	if c.Pass || !strings.HasPrefix(c.Detail, want) {
		t.Fatalf("over: pass %v: %q\nwant %q", c.Pass, c.Detail, want)
	}
	if o.logged("LEAK (client descriptors and goroutines explained): goroutines over the budget at 6.0s (churn)") != 1 {
		t.Errorf("logs: %q", o.logs)
	}
	if r.inRun.maxExcess != 49 || r.inRun.maxOther != 43 {
		t.Errorf("maxExcess %d maxOther %d, want 49 and 43", r.inRun.maxExcess, r.inRun.maxOther)
	}
}

// TestJudgePeaksAreTheMost: the run's peaks are the most of each series.
func TestJudgePeaksAreTheMost(t *testing.T) {
	o := newObserver()
	sc := &socketCount{total: map[string]int{}}
	for i, v := range []int{3, 9, 5} {
		s := sample(float64(i), "")
		s.Goroutines, s.FDs, s.ClientFDs, s.HeapInUse, s.Records = 20+v, v+1, v+2, uint64(v+3), v+4
		o.r.observe(s, sc, 0)
	}
	if p := o.r.inRun.peak; p != (Totals{Goroutines: 29, FDs: 10, Sockets: 11, HeapInUse: 12, Records: 13}) {
		t.Errorf("peak = %+v", p)
	}
}

// TestJudgePhaseFloorsClimbAcrossRepeats: each owner's fewest descriptors
// in a phase make one point per repeat of its fault; a floor rising by
// three over three repeats climbs (and is logged as soon as it shows),
// peaks within a phase do not count, and the quiet times are no phase.
func TestJudgePhaseFloorsClimbAcrossRepeats(t *testing.T) {
	o := newObserver()
	r := o.r
	sc := &socketCount{total: map[string]int{}}
	at := 0.0
	run := func(p *phaseRun, clients ...int) {
		r.cur = p
		for _, n := range clients {
			s := sample(at, "")
			s.ClientFDs = n
			s.BackendFDs["b0"] = 4
			r.observe(s, sc, 0)
			at++
		}
	}
	for i, floor := range []int{2, 3, 5} {
		run(nil, 0, 0) // quiet: no phase, no floor
		p := &phaseRun{Phase: Phase{Fault: FaultFreeze, Start: jsontime.Duration(time.Duration(i) * time.Minute)}}
		run(p, floor+4, floor, floor+7)
		run(&phaseRun{Phase: Phase{Fault: FaultGoAway, Start: jsontime.Duration(time.Duration(i)*time.Minute + 30*time.Second)}}, 6, 6)
	}
	if n := o.logged("soak: GROWTH: client's descriptors climb across 3 repeats of freeze: +3.0 from the first to the last"); n != 1 {
		t.Errorf("climb logged %d times: %q", n, o.logs)
	}
	slopes := r.inRun.phaseSlopes()
	var got []string
	for _, s := range slopes {
		got = append(got, fmt.Sprintf("%s %d %.4g→%.4g %v", s.Series, s.Points, s.First, s.Last, s.Climbing))
	}
	want := []string{
		"fds: backend b0 in phase freeze 3 4→4 false",
		"fds: client in phase freeze 3 1.833→4.833 true",
		"fds: other in phase freeze 3 10→10 false",
		"fds: backend b0 in phase goaway 3 4→4 false",
		"fds: client in phase goaway 3 6→6 false",
		"fds: other in phase goaway 3 10→10 false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("phase slopes:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.inRun.floorOf != nil {
		t.Error("phaseSlopes left a phase open")
	}
	if again := r.inRun.phaseSlopes(); len(again) != len(slopes) {
		t.Errorf("a second reading has %d slopes, want the same %d", len(again), len(slopes))
	}
}

// TestJudgeGrownNamesTheGroupsThatGrew: the evidence names the goroutine
// groups that grew since the first sample, the most first, at most
// maxGrown of them, and nothing when none grew.
func TestJudgeGrownNamesTheGroupsThatGrew(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := func(n int, f func(chan struct{})) {
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(stop) }()
		}
	}
	defer func() { close(stop); wg.Wait() }()
	// The goroutines park at their own pace: wait until n have.
	parked := func(n int) {
		waitFor(t, "the goroutines to park", func() bool {
			m := 0
			for _, g := range leaktest.Goroutines() {
				if strings.Contains(g.Top, "soak.parked") && g.State == "chan receive" {
					m += g.Count
				}
			}
			return m == n
		})
	}
	// The largest group at the end is one that was there at the start and
	// grew least: it is not named.
	start(6, parkedE)
	parked(6)
	o := newObserver()
	o.r.observe(sample(0, ""), &socketCount{total: map[string]int{}}, 0)
	w := o.r.inRun
	if g := w.grown(); g != "" {
		t.Fatalf("nothing started, yet grown: %q", g)
	}
	start(1, parkedE)
	start(2, parkedA)
	start(5, parkedB)
	start(1, parkedC)
	start(3, parkedD)
	parked(18)
	g := w.grown()
	want := "; grown since the start: +5 goroutines in chan receive in github.com/leakproof/leakproof/soak.parkedB"
	if !strings.HasPrefix(g, want) {
		t.Fatalf("grown = %q, want it to start with %q", g, want)
	}
	last := 0
	for _, x := range []string{"+3 goroutines in chan receive in github.com/leakproof/leakproof/soak.parkedD", "+2 goroutines in chan receive in github.com/leakproof/leakproof/soak.parkedA"} {
		i := strings.Index(g, x)
		if i < last {
			t.Fatalf("grown = %q: %q missing or out of order", g, x)
		}
		last = i
	}
	if strings.Contains(g, "parkedC") || strings.Contains(g, "parkedE") || strings.Count(g, "; +") != 2 {
		t.Fatalf("grown lists more than the %d that grew most: %q", maxGrown, g)
	}
}

func parkedA(stop chan struct{}) { <-stop }
func parkedB(stop chan struct{}) { <-stop }
func parkedC(stop chan struct{}) { <-stop }
func parkedD(stop chan struct{}) { <-stop }
func parkedE(stop chan struct{}) { <-stop }

// TestJudgeBackendNamesTheProcessHoldingItsConnection: a backend keeping a
// connection open because a child process inherited the client's socket
// names that process (a real child, as the exec fault makes).
func TestJudgeBackendNamesTheProcessHoldingItsConnection(t *testing.T) {
	b, err := testbackend.Start(testbackend.Name("b0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	conn, err := net.Dial("tcp4", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	exe, _, env, err := childCommand("idle", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe)
	child.Env = env
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	f.Close()
	conn.Close()

	o := newObserver()
	o.r.names = map[netip.AddrPort]string{netip.MustParseAddrPort(b.Addr()): "b0"}
	sc := &socketCount{total: map[string]int{}}
	for i := range o.r.openStreak() {
		s := sample(float64(i), "")
		s.BackendConns["b0"] = 1 + openSlack
		o.r.observe(s, sc, 0)
	}
	want := fmt.Sprintf("backend b0 has 3 connection(s) open at %.1fs, its clients 0 socket(s), 1 of them held by other processes (", float64(o.r.openStreak()-1))
	c := o.r.inRun.backendCheck()
	if c.Pass || !strings.HasPrefix(c.Detail, want) || !strings.Contains(c.Detail, fmt.Sprintf("held by process %d", child.Process.Pid)) {
		t.Errorf("detail %q, want %q naming process %d", c.Detail, want, child.Process.Pid)
	}
}
