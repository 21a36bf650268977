package soak

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

// recordedFeed is a feed that records what the run sends it and dials
// nothing: the removal watch is judged here on its own.
type recordedFeed struct {
	mu     sync.Mutex
	states []resolver.State
	errs   []error
}

func (f *recordedFeed) dial(*client, string, string, resolver.State) (string, []grpc.DialOption, error) {
	return "", nil, errors.New("recordedFeed dials nothing")
}

func (f *recordedFeed) update(st resolver.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, st)
}

func (f *recordedFeed) reportError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
}

func (f *recordedFeed) close() {}

// askedFeed is a recordedFeed that says, as the DNS feed does, when the
// channel learned of a removal: at answered, for the addresses in it.
type askedFeed struct {
	recordedFeed
	answered map[netip.AddrPort]time.Time
}

func (f *askedFeed) learned(_ string, addr netip.AddrPort, _ time.Time) (time.Time, bool) {
	t, ok := f.answered[addr]
	return t, ok
}

// removalRunner is a runner with backends b0 and b1 (both listening on
// loopback, as the run's regular backends) and a main and an informing
// comparison channel.
func removalRunner(t *testing.T, f feed) *runner {
	t.Helper()
	r := &runner{cfg: Config{DrainTimeout: time.Second, RemovalSlack: time.Second}, feed: f, start: time.Now(), socks: newSockTracker()}
	r.names = map[netip.AddrPort]string{}
	for _, name := range []string{"b0", "b1"} {
		b, err := testbackend.Start(testbackend.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		r.regular = append(r.regular, b)
		r.names[netip.MustParseAddrPort(b.Addr())] = name
	}
	r.main = &underTest{name: kindMain}
	r.chans = []*underTest{r.main, {name: kindCompare, info: true}}
	r.lastGone = map[string]time.Time{}
	r.present = map[string]bool{}
	return r
}

func stateOf(addrs ...string) resolver.State {
	var st resolver.State
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	return st
}

// TestJudgeRemovalsFollowTheResolvedList: a list that drops a backend
// starts a removal per channel under test, counted in the phase and fed to
// the channels; a list that brings it back concludes it as re-added; the
// base list is recognized as such, in order and as addresses only.
func TestJudgeRemovalsFollowTheResolvedList(t *testing.T) {
	f := &recordedFeed{}
	r := removalRunner(t, f)
	a0, a1 := r.regular[0].Addr(), r.regular[1].Addr()
	base := stateOf(a0, a1)
	base.Addresses = append(base.Addresses, resolver.Address{Addr: "not an address"})
	r.setList(stateOf(a0, a1)) // the quiet start: no phase
	if !r.atBase() || len(r.pending) != 0 {
		t.Fatalf("base list: atBase %v, %d pending", r.atBase(), len(r.pending))
	}
	p := &phaseRun{Phase: Phase{Fault: FaultFlap}}
	r.cur = p
	r.setList(stateOf(a1))
	if r.atBase() || p.updates != 1 || len(f.states) != 2 {
		t.Fatalf("after a removal: atBase %v, %d updates in the phase, %d fed", r.atBase(), p.updates, len(f.states))
	}
	if len(r.pending) != 2 || r.pending[0].ut != r.main || r.pending[1].ut != r.chans[1] || r.pending[0].Backend != "b0" || r.pending[0].Fault != FaultFlap || r.pending[0].Addr != a0 {
		t.Fatalf("pending removals: %+v", r.pending)
	}
	if _, ok := r.lastGone["b0"]; !ok || len(r.lastGone) != 1 {
		t.Errorf("lastGone = %v", r.lastGone)
	}
	r.setList(stateOf(a1, a0)) // back, in another order
	if r.atBase() || len(r.pending) != 0 || r.main.removals.Readded != 1 || r.chans[1].removals.Readded != 1 || p.updates != 2 {
		t.Fatalf("after the return: atBase %v, %d pending, removals %+v", r.atBase(), len(r.pending), r.main.removals)
	}
	with := stateOf(a0, a1)
	with.Endpoints = []resolver.Endpoint{{Addresses: []resolver.Address{{Addr: a0}}}}
	r.setList(with)
	if r.atBase() {
		t.Error("a list with endpoints taken for the base list")
	}
	if got := namesIn(base, r.names); len(got) != 2 || !got["b0"] || !got["b1"] {
		t.Errorf("namesIn = %v", got)
	}
	if got := namesIn(resolver.State{Endpoints: with.Endpoints}, r.names); len(got) != 1 || !got["b0"] {
		t.Errorf("namesIn of endpoints = %v", got)
	}

	r.reportError(errors.New("bad update"))
	r.cur = nil
	r.reportError(errors.New("another"))
	if p.errors != 1 || len(f.errs) != 2 {
		t.Errorf("%d errors in the phase, %d fed; want 1 and 2", p.errors, len(f.errs))
	}
}

// TestJudgeRemovalsLeakOnlyAfterTheBound: a removed backend's sockets may
// stay up to the bound; one more instant and the removal is leaked (logged
// for the main channel only, evidence saying when the sockets first reached
// 0 if they did); sockets at 0 conclude as released at the first sample
// they were 0, on its return.
func TestJudgeRemovalsLeakOnlyAfterTheBound(t *testing.T) {
	var logs []string
	r := removalRunner(t, &recordedFeed{})
	r.cfg.Logf = func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
	a0 := r.regular[0].Addr()
	r.setList(stateOf(a0, r.regular[1].Addr()))
	r.setList(stateOf(r.regular[1].Addr()))
	at := r.pending[0].at
	sockets := func(main, compare int) *socketCount {
		return &socketCount{byKind: map[string]map[string]int{kindMain: {"b0": main}, kindCompare: {"b0": compare}}}
	}
	r.checkRemovals(at.Add(100*time.Millisecond), sockets(1, 0))
	r.checkRemovals(at.Add(200*time.Millisecond), sockets(0, 0))
	r.checkRemovals(at.Add(300*time.Millisecond), sockets(0, 1))
	r.checkRemovals(at.Add(2*time.Second), sockets(1, 1)) // at the bound: not yet
	if len(r.pending) != 2 || r.main.removals.Leaked != 0 {
		t.Fatalf("at the bound: %d pending, %+v", len(r.pending), r.main.removals)
	}
	r.checkRemovals(at.Add(2*time.Second+time.Nanosecond), sockets(1, 2))
	if len(r.pending) != 0 || r.main.removals.Leaked != 1 || r.chans[1].removals.Leaked != 1 {
		t.Fatalf("past the bound: %d pending, main %+v, compare %+v", len(r.pending), r.main.removals, r.chans[1].removals)
	}
	rm := r.main.removals.List[0]
	if rm.Outcome != RemovalLeaked || rm.Sockets != 1 || time.Duration(rm.After) != 2*time.Second+time.Nanosecond ||
		!strings.HasPrefix(rm.Evidence, "its sockets reached 0 200ms after the removal, then the channel connected to it again") {
		t.Errorf("main's removal: %+v", rm)
	}
	if cm := r.chans[1].removals.List[0]; cm.Sockets != 2 || !strings.HasPrefix(cm.Evidence, "its sockets reached 0 100ms after") {
		t.Errorf("compare's removal: %+v", cm)
	}
	if len(logs) != 1 || !strings.HasPrefix(logs[0], "soak: LEAK (removed backends released): backend b0 ("+a0+"): 1 socket(s) still open 2s after the resolver removed it") {
		t.Errorf("logs: %q", logs)
	}

	// Released: sockets at 0 from a sample on, concluded when it returns.
	r.setList(stateOf(r.regular[1].Addr()))
	r.setList(stateOf(a0, r.regular[1].Addr()))
	r.setList(stateOf(r.regular[1].Addr()))
	at = r.pending[0].at
	r.checkRemovals(at.Add(300*time.Millisecond), sockets(0, 1))
	r.checkRemovals(at.Add(5*time.Second), sockets(0, 0))
	r.setList(stateOf(a0, r.regular[1].Addr()))
	if got := r.main.removals; got.Released != 1 || time.Duration(got.List[1].After) != 300*time.Millisecond || got.List[1].Outcome != RemovalReleased {
		t.Errorf("released removal: %+v", got)
	}
	if got := r.chans[1].removals; got.Released != 1 || time.Duration(got.List[1].After) != 5*time.Second {
		t.Errorf("compare's released removal: %+v", got)
	}
}

// TestJudgeRemovalsCountFromTheChannelsAnswer: under a feed that says when
// the channel learned of a removal (DNS), the bound runs from that answer;
// a removal the channel never learned of is not leaked, and concludes as
// unasked when the backend returns.
func TestJudgeRemovalsCountFromTheChannelsAnswer(t *testing.T) {
	f := &askedFeed{answered: map[netip.AddrPort]time.Time{}}
	r := removalRunner(t, f)
	a0, a1 := r.regular[0].Addr(), r.regular[1].Addr()
	r.setList(stateOf(a0, a1))
	r.setList(stateOf(a1))
	at := r.pending[0].at
	sc := &socketCount{byKind: map[string]map[string]int{kindMain: {"b0": 1}, kindCompare: {"b0": 1}}}
	r.checkRemovals(at.Add(time.Minute), sc)
	if len(r.pending) != 2 {
		t.Fatalf("a removal the channel never learned of concluded: %+v", r.main.removals)
	}
	f.answered[netip.MustParseAddrPort(a0)] = at.Add(10 * time.Second)
	r.checkRemovals(at.Add(12*time.Second), sc)
	if len(r.pending) != 2 || time.Duration(r.pending[0].AnsweredAt) != at.Add(10*time.Second).Sub(r.start) {
		t.Fatalf("within the bound of the answer: %d pending, answered at %v", len(r.pending), time.Duration(r.pending[0].AnsweredAt))
	}
	delete(f.answered, netip.MustParseAddrPort(a0)) // read once, kept
	r.checkRemovals(at.Add(12*time.Second+time.Millisecond), sc)
	if r.main.removals.Leaked != 1 || len(r.pending) != 0 {
		t.Fatalf("past the bound of the answer: %+v", r.main.removals)
	}

	r.setList(stateOf(a0, a1))
	r.setList(stateOf(a1))
	r.setList(stateOf(a0, a1))
	if r.main.removals.Unasked != 1 || r.main.removals.List[1].Outcome != RemovalUnasked {
		t.Errorf("a removal never learned of and undone: %+v", r.main.removals)
	}
}
