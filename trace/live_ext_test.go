package trace_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
)

// These tests check CheckLive, the live leak check the admin service runs.
// The states below cannot be provoked on a real channel: the manager's own
// invariants prevent them (it shuts a subchannel down in the same critical
// section that drops its last reference, and Close shuts down everything it
// holds). The check exists to catch a regression that breaks them, so these
// tests feed it hand-made snapshots and rings. The states a real channel can
// reach are tested end to end in service_ext_test.go.

var lt0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// life returns the events of a subchannel's full life on manager 1.
func liveLife(seq uint64, id uint64, key string, destroyed bool) []trace.Event {
	ev := func(kind trace.Kind, before, after int, holder string) trace.Event {
		seq++
		return trace.Event{Seq: seq, Time: lt0, Manager: 1, Target: "t", Subchannel: id, Key: key, Kind: kind, RefsBefore: before, RefsAfter: after, Holder: holder}
	}
	out := []trace.Event{
		ev(trace.KindCreate, 0, 0, "a"),
		ev(trace.KindRef, 0, 1, "a"),
		ev(trace.KindConnect, 1, 1, ""),
		ev(trace.KindState, 1, 1, ""),
	}
	open := ev(trace.KindSocketOpen, 1, 1, "")
	open.Socket = &trace.SocketRef{ID: id, Local: "127.0.0.1:1000", Remote: key}
	out = append(out, open)
	if destroyed {
		cl := ev(trace.KindUnref, 1, 0, "a")
		out = append(out, cl, ev(trace.KindShutdown, 0, 0, "a"))
		sc := ev(trace.KindSocketClose, 0, 0, "")
		sc.Socket = open.Socket
		out = append(out, sc, ev(trace.KindDestroy, 0, 0, ""))
	}
	return out
}

func liveInfo(id uint64, key string, refs int, holders ...string) trace.Subchannel {
	return trace.Subchannel{ID: id, Manager: 1, Target: "t", Key: key, State: "READY", Refs: refs, Holders: holders, Created: lt0}
}

func liveKinds(r trace.LiveReport) []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, string(p.Kind))
	}
	return out
}

func TestCheckLiveCleanState(t *testing.T) {
	ev := append(liveLife(0, 1, "b:1", false), liveLife(100, 2, "b:2", true)...)
	r := trace.CheckLive(lt0, time.Second, []trace.ManagerState{{ID: 1, Target: "t", Events: ev, Subchannels: []trace.Subchannel{liveInfo(1, "b:1", 1, "a")}}})
	if len(r.Problems) != 0 || r.Subchannels != 1 || r.EventsChecked != len(ev) || r.Draining != 0 {
		t.Fatalf("clean state: %+v", r)
	}
}

func TestCheckLiveShutDownSubchannels(t *testing.T) {
	draining := liveInfo(1, "b:1", 0)
	draining.Shutdown, draining.ShutdownAt = true, lt0.Add(-time.Second)
	draining.Sockets = []trace.Socket{{ID: 9, Local: "127.0.0.1:1000", Remote: "b:1", Opened: lt0.Add(-time.Minute)}}
	idle := liveInfo(2, "b:2", 0)
	idle.Shutdown, idle.ShutdownAt = true, lt0.Add(-time.Minute)
	ms := []trace.ManagerState{{ID: 1, Target: "t", Subchannels: []trace.Subchannel{draining, idle}}}

	r := trace.CheckLive(lt0, 2*time.Second, ms)
	if got := liveKinds(r); len(got) != 1 || got[0] != string(trace.ProblemNotDestroyed) || r.Draining != 1 {
		t.Fatalf("grace 2s: problems %v, draining %d; want %s for #2 only and #1 draining", got, r.Draining, string(trace.ProblemNotDestroyed))
	}
	r = trace.CheckLive(lt0, 0, ms)
	if got := liveKinds(r); len(got) != 2 || got[0] != string(trace.ProblemSocketsOpen) || got[1] != string(trace.ProblemNotDestroyed) {
		t.Fatalf("grace 0: problems %v", got)
	}
	p := r.Problems[0]
	if p.Subchannel != 1 || time.Duration(p.SinceShutdown) != time.Second || !strings.Contains(p.Message, "socket 9 127.0.0.1:1000->b:1 open 1m0s") {
		t.Fatalf("problem %+v: want #1, 1s since shutdown, the socket named", p)
	}
}

func TestCheckLiveReleasedButNotShutDown(t *testing.T) {
	ev := liveLife(0, 1, "b:1", false)
	ev = append(ev, trace.Event{Seq: 50, Manager: 1, Target: "t", Subchannel: 1, Key: "b:1", Kind: trace.KindUnref, RefsBefore: 1, RefsAfter: 0, Holder: "a"})
	r := trace.CheckLive(lt0, time.Second, []trace.ManagerState{{ID: 1, Target: "t", Events: ev, Subchannels: []trace.Subchannel{liveInfo(1, "b:1", 0)}}})
	if got := liveKinds(r); len(got) != 1 || got[0] != string(trace.ProblemReleasedNotShut) {
		t.Fatalf("problems %v, want only %s (trace.Check's own end-of-trace verdict left to the live state)", got, string(trace.ProblemReleasedNotShut))
	}
	p := r.Problems[0]
	if p.Target != "t" || p.Key != "b:1" || len(p.Events) == 0 || p.Events[len(p.Events)-1].Kind != trace.KindUnref {
		t.Fatalf("problem %+v: want the unref as the last evidence", p)
	}
	for _, e := range p.Events {
		if e.Kind == trace.KindState || e.Kind == trace.KindConnect {
			t.Fatalf("evidence has %s events", e.Kind)
		}
	}
}

func TestCheckLiveClosedManagerWithLiveSubchannel(t *testing.T) {
	r := trace.CheckLive(lt0, time.Second, []trace.ManagerState{{ID: 1, Target: "t", Closed: true, Subchannels: []trace.Subchannel{liveInfo(3, "b:3", 1, "endpoint{b:3}")}}})
	if got := liveKinds(r); len(got) != 1 || got[0] != string(trace.ProblemClosedManagerAlive) || !strings.Contains(r.Problems[0].Message, "endpoint{b:3}") {
		t.Fatalf("problems %+v, want %s naming the holder", r.Problems, string(trace.ProblemClosedManagerAlive))
	}
}

func TestCheckLiveRingFindings(t *testing.T) {
	// An unref by a holder that never took a reference, and a destroy with a
	// socket still open: both shown by the ring alone.
	ev := liveLife(0, 1, "b:1", false)
	ev = append(ev, trace.Event{Seq: 50, Manager: 1, Target: "t", Subchannel: 1, Key: "b:1", Kind: trace.KindUnref, RefsBefore: 1, RefsAfter: 0, Holder: "stranger"})
	ev = append(ev,
		trace.Event{Seq: 51, Manager: 1, Target: "t", Subchannel: 1, Key: "b:1", Kind: trace.KindShutdown},
		trace.Event{Seq: 52, Manager: 1, Target: "t", Subchannel: 1, Key: "b:1", Kind: trace.KindDestroy})
	r := trace.CheckLive(lt0, time.Second, []trace.ManagerState{{ID: 1, Target: "t", Events: ev}})
	got := strings.Join(liveKinds(r), ",")
	if got != "unbalanced,leak" {
		t.Fatalf("problems %v, want unbalanced then leak", r.Problems)
	}
	if !strings.Contains(r.Problems[0].Message, `"stranger"`) || !strings.Contains(r.Problems[1].Message, "destroy with 1 socket(s) still open") {
		t.Fatalf("messages %q, %q", r.Problems[0].Message, r.Problems[1].Message)
	}
	if r.Problems[0].Target != "t" {
		t.Fatalf("ring problem without the target: %+v", r.Problems[0])
	}
}

func TestCheckLivePartialRingIsNotALeak(t *testing.T) {
	// Only the end of #1's life and the middle of #2's are left in the ring;
	// #2 is still alive and held, #3 (shutdown in the ring, destroyed since)
	// is gone from the snapshot.
	full := append(liveLife(0, 1, "b:1", true), liveLife(100, 2, "b:2", false)...)
	var ring []trace.Event
	for _, e := range full {
		if e.Kind != trace.KindCreate && e.Kind != trace.KindRef {
			ring = append(ring, e)
		}
	}
	ring = append(ring,
		trace.Event{Seq: 200, Manager: 1, Target: "t", Subchannel: 3, Key: "b:3", Kind: trace.KindUnref, RefsBefore: 1, RefsAfter: 0, Holder: "a"},
		trace.Event{Seq: 201, Manager: 1, Target: "t", Subchannel: 3, Key: "b:3", Kind: trace.KindShutdown, Holder: "a"})
	r := trace.CheckLive(lt0, time.Second, []trace.ManagerState{{ID: 1, Target: "t", Events: ring[3:], Subchannels: []trace.Subchannel{liveInfo(2, "b:2", 1, "a")}}})
	if len(r.Problems) != 0 {
		t.Fatalf("partial ring: false positives %+v", r.Problems)
	}
}

// A subchannel shut down exactly grace ago is no longer draining: grace is
// how long it may stay, not a moment more.
func TestCheckLiveGraceEndsAtGrace(t *testing.T) {
	si := liveInfo(1, "b:1", 0)
	si.Shutdown, si.ShutdownAt = true, lt0.Add(-2*time.Second)
	ms := []trace.ManagerState{{ID: 1, Target: "t", Subchannels: []trace.Subchannel{si}}}
	if r := trace.CheckLive(lt0, 2*time.Second, ms); r.Draining != 0 || len(r.Problems) != 1 {
		t.Fatalf("shut down exactly grace ago: draining %d, problems %v; want a problem", r.Draining, liveKinds(r))
	}
	if r := trace.CheckLive(lt0, 2*time.Second+time.Nanosecond, ms); r.Draining != 1 || len(r.Problems) != 0 {
		t.Fatalf("shut down 1ns less than grace ago: draining %d, problems %v; want draining", r.Draining, liveKinds(r))
	}
}

// The check attaches evidence to every problem from one pass over the
// ring: with a problem on every one of 2,000 subchannels it takes about as
// long as with a problem on one (a scan per problem made it 2,000 scans).
func TestCheckLiveIsLinearInTheRing(t *testing.T) {
	const subchannels, perSubchannel = 2000, 10
	var ring []trace.Event
	seq := uint64(0)
	for id := uint64(1); id <= subchannels; id++ {
		for range perSubchannel / 2 {
			seq++
			ring = append(ring, trace.Event{Seq: seq, Time: lt0, Manager: 1, Target: "t", Subchannel: id, Key: "k", Kind: trace.KindRef, RefsBefore: 0, RefsAfter: 1, Holder: "a"})
			seq++
			ring = append(ring, trace.Event{Seq: seq, Time: lt0, Manager: 1, Target: "t", Subchannel: id, Key: "k", Kind: trace.KindUnref, RefsBefore: 1, RefsAfter: 0, Holder: "a"})
		}
	}
	run := func(problems int) (time.Duration, trace.LiveReport) {
		var subs []trace.Subchannel
		for id := uint64(1); id <= uint64(problems); id++ {
			subs = append(subs, liveInfo(id, "k", 0)) // released, never shut down
		}
		ms := []trace.ManagerState{{ID: 1, Target: "t", Events: ring, Subchannels: subs}}
		best := time.Duration(1 << 62)
		var r trace.LiveReport
		for range 3 {
			start := time.Now()
			r = trace.CheckLive(lt0, time.Second, ms)
			best = min(best, time.Since(start))
		}
		return best, r
	}
	one, _ := run(1)
	all, r := run(subchannels)
	if len(r.Problems) < subchannels {
		t.Fatalf("%d problems, want at least %d", len(r.Problems), subchannels)
	}
	for _, p := range r.Problems[:3] {
		if len(p.Events) == 0 || p.Events[0].Subchannel != p.Subchannel {
			t.Fatalf("problem %v has no evidence of its own", p)
		}
	}
	t.Logf("%d-event ring: 1 problem %v, %d problems %v", len(ring), one, subchannels, all)
	if all > 4*one {
		t.Fatalf("%d problems took %v, 1 problem %v: evidence is not found in one pass", subchannels, all, one)
	}
}
