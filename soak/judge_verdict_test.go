package soak

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

// The judging code of the soak fed recorded values: what a run saw, as
// samples, phases, removals and trace reports, goes in; the checks and
// the report come out. A soak reaches the same code with values it cannot
// choose.

func secs(s float64) jsontime.Duration { return jsontime.Duration(s * float64(time.Second)) }

// The failure rate is failed RPCs over completed ones, 0 with none.
func TestJudgeFailureRate(t *testing.T) {
	for _, tt := range []struct {
		s    RPCStats
		want float64
	}{
		{RPCStats{}, 0},
		{RPCStats{OK: 3, Failed: 1}, 0.25},
		{RPCStats{Failed: 2}, 1},
		{RPCStats{OK: 7}, 0},
		{RPCStats{OK: 2, Failed: 2}, 0.5},
	} {
		if got := tt.s.FailureRate(); got != tt.want {
			t.Errorf("%+v.FailureRate() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// Each outcome is counted under its own name, the slowest release is the
// longest, and the list keeps every leaked removal and only the first
// maxRemovalsKept others.
func TestJudgeRemovalsCountEachOutcome(t *testing.T) {
	var rs Removals
	for _, rm := range []Removal{
		{Backend: "b0", Outcome: RemovalReleased, After: secs(0.005)},
		{Backend: "b1", Outcome: RemovalReleased, After: secs(0.009)},
		{Backend: "b2", Outcome: RemovalReleased, After: secs(0.003)},
		{Backend: "b3", Outcome: RemovalReadded},
		{Backend: "b4", Outcome: RemovalReadded},
		{Backend: "b5", Outcome: RemovalLeaked},
		{Backend: "b6", Outcome: RemovalOpen},
		{Backend: "b7", Outcome: RemovalOpen},
		{Backend: "b8", Outcome: RemovalOpen},
		{Backend: "b9", Outcome: RemovalUnasked},
	} {
		rs.add(rm)
	}
	want := Removals{Released: 3, Readded: 2, Leaked: 1, Open: 3, Unasked: 1, SlowestRelease: secs(0.009)}
	got := rs
	got.List = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	if len(rs.List) != 10 {
		t.Errorf("listed %d removals, want all 10", len(rs.List))
	}

	// The copy is the caller's own.
	cp := rs.clone()
	cp.List[0].Backend = "changed"
	if rs.List[0].Backend != "b0" {
		t.Errorf("clone shares its list with the original")
	}
}

func TestJudgeRemovalsListEveryLeakAndTheFirstOthers(t *testing.T) {
	var rs Removals
	for i := range 5 {
		rs.add(Removal{Backend: fmt.Sprintf("leak%d", i), Outcome: RemovalLeaked})
	}
	for i := range maxRemovalsKept + 20 {
		rs.add(Removal{Backend: fmt.Sprintf("b%d", i), Outcome: RemovalReleased})
	}
	rs.add(Removal{Backend: "late-leak", Outcome: RemovalLeaked})
	if rs.Released != maxRemovalsKept+20 || rs.Leaked != 6 {
		t.Fatalf("counted %d released, %d leaked", rs.Released, rs.Leaked)
	}
	if want := 6 + maxRemovalsKept; len(rs.List) != want {
		t.Fatalf("listed %d removals, want %d (every leaked one and the first %d others)", len(rs.List), want, maxRemovalsKept)
	}
	if last := rs.List[len(rs.List)-1].Backend; last != "late-leak" {
		t.Errorf("last listed = %s, want the leak concluded after the list filled", last)
	}
	if b := rs.List[len(rs.List)-2].Backend; b != fmt.Sprintf("b%d", maxRemovalsKept-1) {
		t.Errorf("last listed release = %s, want b%d", b, maxRemovalsKept-1)
	}
}

// The one-line verdict: a pass says so in a line; a failure names each
// failed check that counts, and only those.
func TestJudgeVerdictLine(t *testing.T) {
	r := &Result{
		Policy:   "leakproof_round_robin",
		Duration: secs(30),
		Backends: []BackendInfo{{Name: "b0", Role: roleRegular}, {Name: "b1", Role: roleRegular}, {Name: "frozen", Role: roleFrozen}},
		Faults:   []Fault{FaultGoAway, FaultDuplicate},
		Pass:     true,
		Checks:   []Check{{Name: CheckRPCFailures, Pass: true, Detail: "fine"}},
	}
	if got, want := r.Verdict(), "soak passed: leakproof_round_robin, 2 backends, 30s, 2 fault(s): no leak"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
	r.Pass = false
	r.XDS = true
	r.Checks = []Check{
		{Name: CheckRPCFailures, Pass: true, Detail: "fine"},
		{Name: CheckRemovals, Pass: false, Detail: "1 leaked: b2"},
		{Name: "compare round_robin: " + CheckSocketLimit, Pass: false, Info: true, Detail: "2 sockets"},
		{Name: CheckTrace, Pass: false, Detail: "leaked: #3"},
	}
	want := "soak FAILED: leakproof_round_robin under xDS, 2 backends, 30s, 2 fault(s):\n" +
		"  removed backends released: 1 leaked: b2\n" +
		"  refcount trace: leaked: #3"
	if got := r.Verdict(); got != want {
		t.Errorf("Verdict() =\n%s\nwant\n%s", got, want)
	}
}

// oneLine folds a detail onto one line and cuts it at max characters.
func TestJudgeOneLine(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abcde…"},
		{"ab\ncd", 10, "ab cd"},
		{"", 3, ""},
	} {
		if got := oneLine(tt.in, tt.max); got != tt.want {
			t.Errorf("oneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// formatCounts lists the backends with sockets in start order, then any
// others by name, and "-" when none has one.
func TestJudgeFormatCounts(t *testing.T) {
	order := []string{"b1", "b0", "b2"}
	for _, tt := range []struct {
		m    map[string]int
		want string
	}{
		{nil, "-"},
		{map[string]int{"b0": 0, "zz": 0}, "-"},
		{map[string]int{"b0": 1, "b1": 0, "b2": 2}, "b0:1 b2:2"},
		{map[string]int{"b0": 1, "b1": 3, "tls": 1, "frozen": 2, "reset": 0}, "b1:3 b0:1 frozen:2 tls:1"},
	} {
		if got := formatCounts(tt.m, order); got != tt.want {
			t.Errorf("formatCounts(%v) = %q, want %q", tt.m, got, tt.want)
		}
	}
}

// recordedResult is a failed run's result as a soak writes it, with a
// comparison channel, an error in one phase and the DNS side.
func recordedResult() *Result {
	return &Result{
		Policy:   "leakproof_round_robin",
		Compare:  "round_robin",
		Duration: secs(30),
		Backends: []BackendInfo{{Name: "b0", Role: roleRegular}, {Name: "b1", Role: roleRegular}, {Name: "frozen", Role: roleFrozen}},
		Faults:   []Fault{FaultGoAway, FaultDuplicate},
		Checks: []Check{
			{Name: CheckRPCFailures, Pass: true, Detail: "0.000%: 0 of 10 RPCs failed"},
			{Name: CheckRemovals, Pass: false, Detail: "1 leaked:\nb2"},
			{Name: CheckSocketLimit, Pass: true, Info: true, Detail: "not checked"},
			{Name: "compare round_robin: " + CheckSocketLimit, Pass: false, Info: true, Detail: "2 sockets"},
		},
		Peak:        Totals{Goroutines: 120, FDs: 40, Sockets: 6, HeapInUse: 3 << 20, Records: 9},
		Final:       Totals{Goroutines: 20, FDs: 12, Sockets: 0, HeapInUse: 1 << 19, Records: 0},
		Subchannels: SubchannelTotals{Created: 14, Destroyed: 13},
		WarmUp:      secs(6),
		Slopes: []Slope{
			{Series: "goroutines", Unit: "goroutines", PerMinute: 1.5, Span: secs(24), Judged: true},
			{Series: "fds", Unit: "fds", PerMinute: 12, Span: secs(24), Judged: true, Climbing: true},
			{Series: "heap in use", Unit: "bytes", PerMinute: 0, Span: secs(4)},
			{Series: "fds: backend b0 in phase dup", Unit: "fds", PerMinute: 0.5, Judged: true},
			{Series: "fds: backend b1 in phase dup", Unit: "fds", PerMinute: 9, Judged: true, Climbing: true},
		},
		Phases: []Phase{
			{Fault: FaultGoAway, Start: secs(1), End: secs(2.5), MaxSockets: map[string]int{"b0": 1, "b1": 2}, CompareMaxSockets: map[string]int{"b1": 3}, Evidence: "12 GOAWAYs"},
			{Fault: FaultDuplicate, Start: secs(2.5), End: secs(4), MaxSockets: map[string]int{"b0": 1}, Evidence: "2 updates", Error: "resolver gone"},
		},
		DNS: &DNSReport{
			Server:                "127.0.0.1:5353",
			Port:                  4242,
			MinResolutionInterval: secs(0.5),
			Skipped:               map[Fault]string{FaultOverlap: "DNS lists addresses, not endpoints"},
			Main:                  DNSQueries{Name: "main.soak", Queries: 30, Answered: 10, PerMinute: 60},
			Compare:               &DNSQueries{Name: "compare.soak", Queries: 12, Answered: 4, PerMinute: 24},
		},
		Removals: Removals{List: []Removal{
			{Backend: "b1", Addr: "127.0.0.3:4242", RemovedAt: secs(2), AnsweredAt: secs(2.25), Outcome: RemovalReleased, After: secs(0.5)},
			{Backend: "b0", Addr: "127.0.0.2:4242", RemovedAt: secs(3), Outcome: RemovalUnasked, After: secs(1)},
		}},
		CompareRemovals: &Removals{List: []Removal{
			{Backend: "b1", Addr: "127.0.0.3:4242", RemovedAt: secs(2), AnsweredAt: secs(2.75), Outcome: RemovalLeaked, After: secs(3)},
		}},
	}
}

// normalize squeezes the runs of spaces tabwriter pads with, so that the
// expectations read as the table's cells.
func normalize(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// The text report: the verdict table (each check's standing), the peak and
// final readings, the slopes (a phase's own series only when it climbs),
// each phase's sockets for both channels (an error in place of the
// evidence), and the DNS side.
func TestJudgeWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := recordedResult().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	got := normalize(b.String())
	for _, want := range []string{
		"leakproof soak: FAIL leakproof_round_robin, 2 backends, 30s timeline, 2 fault(s)\n",
		"\nRPC failures pass 0.000%: 0 of 10 RPCs failed\n",
		"\nremoved backends released FAIL 1 leaked: b2\n",
		"\nsockets per backend info not checked\n",
		"\ncompare round_robin: sockets per backend info (fails) 2 sockets\n",
		"\npeak goroutines 120, fds 40, client sockets 6, heap in use 3.0 MiB, manager records 9\n",
		"\nfinal goroutines 20, fds 12, client sockets 0, heap in use 0.5 MiB, manager records 0\n",
		"\nsubchannels 14 created, 13 destroyed\n",
		"\nslope after 6s warm-up per minute span verdict\n",
		"\ngoroutines +1.5 goroutines 24s flat\n",
		"\nfds +12 fds 24s CLIMBING\n",
		"\nheap in use +0 bytes 4s not judged\n",
		"\nfds: backend b1 in phase dup +9 fds 0s CLIMBING\n",
		"\nfault window max sockets per backend (leakproof_round_robin) round_robin evidence\n",
		"\ngoaway 1.0s–2.5s b0:1 b1:2 b1:3 12 GOAWAYs\n",
		"\ndup 2.5s–4.0s b0:1 - ERROR: resolver gone\n",
		"\nresolver dns: DNS server 127.0.0.1:5353, backends on port 4242, grpc's dns resolver; grpc's minimum resolution interval lowered to 500ms for this process",
		"\noverlap skipped: DNS lists addresses, not endpoints\n",
		"\nleakproof_round_robin main.soak: 30 queries (60.0 a minute), 10 A answers with a list\n",
		"\nround_robin compare.soak: 12 queries (24.0 a minute), 4 A answers with a list\n",
		"\nb1 (127.0.0.3:4242) leakproof_round_robin 2.00s 2.25s 2.50s released\n",
		"\nb0 (127.0.0.2:4242) leakproof_round_robin 3.00s never - unasked\n",
		"\nb1 (127.0.0.3:4242) round_robin 2.00s 2.75s - leaked\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "b0 in phase dup") {
		t.Errorf("report lists a phase's own series that did not climb:\n%s", got)
	}
}

// Without a comparison channel and outside DNS the report has neither's
// columns or section, and a passing run says PASS.
func TestJudgeWriteTextMainOnly(t *testing.T) {
	r := recordedResult()
	r.Compare, r.CompareRemovals, r.DNS = "", nil, nil
	r.Pass = true
	r.Checks = []Check{{Name: CheckRPCFailures, Pass: true, Detail: "fine"}}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	got := normalize(b.String())
	for _, want := range []string{
		"leakproof soak: PASS leakproof_round_robin, 2 backends, 30s timeline, 2 fault(s)\n",
		"\nfault window max sockets per backend (leakproof_round_robin) evidence\n",
		"\ngoaway 1.0s–2.5s b0:1 b1:2 12 GOAWAYs\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "resolver dns") || strings.Contains(got, "round_robin compare") {
		t.Errorf("report has a DNS or comparison section it has no data for:\n%s", got)
	}

	// Under DNS with no comparison channel: the main channel's rows only.
	r.DNS = recordedResult().DNS
	r.DNS.Compare = nil
	b.Reset()
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	got = normalize(b.String())
	if !strings.Contains(got, "\nb0 (127.0.0.2:4242) leakproof_round_robin 3.00s never - unasked") || strings.Contains(got, "compare.soak") {
		t.Errorf("DNS section without a comparison channel:\n%s", got)
	}
}

// A writer that fails makes WriteText fail.
func TestJudgeWriteTextReportsAWriteError(t *testing.T) {
	boom := errors.New("disk full")
	if err := recordedResult().WriteText(failingWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("WriteText to a failing writer = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// The trace check: problems listed (the first five, then a count), live
// subchannels and a trace writer's error fail it; a clean trace passes and
// says so, and so does a policy that writes no trace.
func TestJudgeTraceCheck(t *testing.T) {
	sub := trace.Subscribe(1, func(*trace.Event) bool { return false })
	defer sub.Close()
	r := &runner{cfg: Config{Policy: "pick_first"}, sub: sub}
	problems := func(n int) []trace.Problem {
		var ps []trace.Problem
		for i := range n {
			ps = append(ps, trace.Problem{Kind: trace.ProblemLeak, Subchannel: uint64(i + 1), Key: "127.0.0.1:1", Manager: 7, Message: "no destroy"})
		}
		return ps
	}
	for _, tt := range []struct {
		name  string
		rep   trace.Report
		twErr error
		pass  bool
		want  string // the whole detail
	}{
		{"clean", trace.Report{Events: 40, Subchannels: 4, Destroyed: 4}, nil, true, "clean: 40 events, 4 subchannels, 4 destroyed"},
		{"no trace", trace.Report{}, nil, true, "no refcount trace: pick_first does not use subconn"},
		{"live", trace.Report{Events: 40, Subchannels: 4, Destroyed: 3, Live: 1}, nil, false, "1 subchannel(s) still live after every channel closed"},
		{"writer", trace.Report{Events: 40}, errors.New("disk full"), false, "trace writer: disk full"},
		{"five problems", trace.Report{Events: 40, Problems: problems(5)}, nil, false, strings.Join(problemStrings(problems(5)), "; ")},
		{"seven problems", trace.Report{Events: 40, Problems: problems(7), Live: 2}, nil, false,
			strings.Join(problemStrings(problems(5)), "; ") + "; and 2 more; 2 subchannel(s) still live after every channel closed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := r.traceCheck(tt.rep, tt.twErr)
			if c.Name != CheckTrace || c.Pass != tt.pass || c.Detail != tt.want {
				t.Errorf("traceCheck = %q pass %v: %q; want pass %v: %q", c.Name, c.Pass, c.Detail, tt.pass, tt.want)
			}
		})
	}
}

func problemStrings(ps []trace.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// The fault check: every configured fault must have run to its end and
// shown its effect; a phase cut short by the end of the run does not count,
// one skipped by the resolver counts without evidence and is named, and the
// run's own problems fail it too.
func TestJudgeFaultCheck(t *testing.T) {
	dup := func(start, end float64, updates int) *phaseRun {
		return &phaseRun{Phase: Phase{Fault: FaultDuplicate, Start: secs(start), End: secs(end)}, updates: updates}
	}
	for _, tt := range []struct {
		name     string
		faults   []Fault
		phases   []*phaseRun
		problems []string
		pass     bool
		want     string // the whole detail
	}{
		{"every fault showed", []Fault{FaultDuplicate}, []*phaseRun{dup(1, 2.5, 3), dup(4, 5.5, 1)}, nil, true,
			"2 phase(s); every one of the 1 fault(s) ran and showed its effect"},
		{"cut short", []Fault{FaultDuplicate}, []*phaseRun{{Phase: Phase{Fault: FaultDuplicate, Start: secs(1), Error: "canceled"}}}, nil, false,
			"dup never ran"},
		{"cut short after a full one", []Fault{FaultDuplicate}, []*phaseRun{dup(1, 2.5, 3), {Phase: Phase{Fault: FaultDuplicate, Start: secs(4)}}}, nil, true,
			"2 phase(s); every one of the 1 fault(s) ran and showed its effect"},
		{"not provoked", []Fault{FaultDuplicate}, []*phaseRun{dup(1.25, 2.5, 0)}, nil, false,
			"dup at 1.2s: no resolver update"},
		{"error", []Fault{FaultDuplicate}, []*phaseRun{{Phase: Phase{Fault: FaultDuplicate, Start: secs(3), End: secs(4), Error: "resolver gone"}, updates: 2}}, nil, false,
			"dup at 3.0s: resolver gone"},
		{"skipped", []Fault{FaultDuplicate, FaultOverlap}, []*phaseRun{dup(1, 2, 1), {Phase: Phase{Fault: FaultOverlap, Start: secs(2), End: secs(3), Skipped: "DNS lists addresses"}}}, nil, true,
			"2 phase(s); every fault ran and showed its effect, but overlap skipped: DNS lists addresses"},
		{"skipped and failed", []Fault{FaultDuplicate, FaultOverlap}, []*phaseRun{dup(1, 2, 0), {Phase: Phase{Fault: FaultOverlap, Start: secs(2), End: secs(3), Skipped: "DNS lists addresses"}}}, nil, false,
			"dup at 1.0s: no resolver update"},
		{"problems", []Fault{FaultDuplicate}, []*phaseRun{dup(1, 2, 1)}, []string{"sampling: /proc unreadable", "churn: dial failed"}, false,
			"sampling: /proc unreadable; churn: dial failed"},
		{"one of two never ran", []Fault{FaultDuplicate, FaultFlap}, []*phaseRun{dup(1, 2, 1)}, nil, false,
			"flap never ran"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &runner{cfg: Config{Faults: tt.faults}, phases: tt.phases}
			r.problems = tt.problems
			c := r.faultCheck()
			if c.Name != CheckFaults || c.Pass != tt.pass || c.Detail != tt.want {
				t.Errorf("faultCheck = %q pass %v: %q; want pass %v: %q", c.Name, c.Pass, c.Detail, tt.pass, tt.want)
			}
		})
	}
}

// A closed channel passes once its sockets are gone (and the tracker
// forgets it), fails once they outlive the removal bound, and is watched
// until one or the other.
func TestJudgeClosedChannels(t *testing.T) {
	r := &runner{cfg: Config{DrainTimeout: time.Second, RemovalSlack: time.Second}, socks: newSockTracker()}
	now := time.Now()
	gone := r.socks.register("churn-1", kindChurn)
	late := r.socks.register("churn-2", kindChurn)
	young := r.socks.register("churn-3", kindChurn)
	atBound := r.socks.register("churn-4", kindChurn)
	r.closing = []*closedCheck{
		{ch: gone, at: now.Add(-5 * time.Second)},
		{ch: late, at: now.Add(-2500 * time.Millisecond)},
		{ch: young, at: now.Add(-time.Second)},
		{ch: atBound, at: now.Add(-2 * time.Second)},
	}
	sc := &socketCount{byChan: map[int]map[string]int{
		gone.id:    {"b0": 0},
		late.id:    {"b1": 2},
		young.id:   {"b0": 1},
		atBound.id: {"b2": 1},
	}}
	r.checkClosed(now, sc)
	if r.closedOK != 1 || r.closedFailed != 1 {
		t.Errorf("closed OK %d, failed %d; want 1 and 1", r.closedOK, r.closedFailed)
	}
	if want := []string{"channel churn-2: 2 socket(s) (b1:2) still open 2.5s after Close"}; !reflect.DeepEqual(r.closedFailures, want) {
		t.Errorf("failures = %q, want %q", r.closedFailures, want)
	}
	var watched []string
	for _, c := range r.closing {
		watched = append(watched, c.ch.name)
	}
	if want := []string{"churn-3", "churn-4"}; !reflect.DeepEqual(watched, want) {
		t.Errorf("still watched: %v, want %v", watched, want)
	}
	if _, ok := r.socks.chans[gone.id]; ok {
		t.Errorf("the tracker still knows the channel whose sockets are gone")
	}
	if _, ok := r.socks.chans[late.id]; !ok {
		t.Errorf("the tracker forgot a channel that kept its sockets")
	}

	// Their sockets close: both pass.
	r.checkClosed(now.Add(time.Second), &socketCount{byChan: map[int]map[string]int{}})
	if r.closedOK != 3 || r.closedFailed != 1 || len(r.closing) != 0 {
		t.Errorf("after the sockets closed: OK %d, failed %d, watched %d; want 3, 1, 0", r.closedOK, r.closedFailed, len(r.closing))
	}
	if c := r.closedCheck(); c.Pass || c.Detail != "1 of 4 closed channel(s) kept sockets open: channel churn-2: 2 socket(s) (b1:2) still open 2.5s after Close" {
		t.Errorf("closedCheck = pass %v: %s", c.Pass, c.Detail)
	}
}

// A channel's sockets to several backends are summed and each is named.
func TestJudgeClosedChannelNamesEveryBackend(t *testing.T) {
	r := &runner{cfg: Config{DrainTimeout: time.Second}, socks: newSockTracker()}
	ch := r.socks.register("churn-1", kindChurn)
	now := time.Now()
	r.closing = []*closedCheck{{ch: ch, at: now.Add(-3 * time.Second)}}
	r.checkClosed(now, &socketCount{byChan: map[int]map[string]int{ch.id: {"b0": 1, "b1": 2}}})
	if len(r.closedFailures) != 1 {
		t.Fatalf("failures = %q", r.closedFailures)
	}
	f := r.closedFailures[0]
	if !strings.HasPrefix(f, "channel churn-1: 3 socket(s) (") || !strings.Contains(f, "b0:1") || !strings.Contains(f, "b1:2") || !strings.HasSuffix(f, ") still open 3s after Close") {
		t.Errorf("failure = %q", f)
	}
}

// Only the first maxListed failures of closed channels are kept.
func TestJudgeClosedFailuresAreBounded(t *testing.T) {
	r := &runner{}
	for i := range maxListed + 5 {
		r.listClosedFailure(fmt.Sprintf("channel churn-%d", i))
	}
	if len(r.closedFailures) != maxListed || r.closedFailures[maxListed-1] != fmt.Sprintf("channel churn-%d", maxListed-1) {
		t.Errorf("kept %d failures (last %q), want the first %d", len(r.closedFailures), r.closedFailures[len(r.closedFailures)-1], maxListed)
	}
}

// A GOAWAY drain window includes both its ends, and the GOAWAY phase is
// one whole.
func TestJudgeDrainWindows(t *testing.T) {
	t0 := time.Now()
	r := &runner{}
	r.drainWindows = []timeWindow{{t0, t0.Add(time.Second)}, {t0.Add(5 * time.Second), t0.Add(6 * time.Second)}}
	for _, tt := range []struct {
		at   time.Duration
		want bool
	}{
		{-time.Millisecond, false},
		{0, true},
		{500 * time.Millisecond, true},
		{time.Second, true},
		{time.Second + time.Millisecond, false},
		{5500 * time.Millisecond, true},
		{7 * time.Second, false},
	} {
		if got := r.drainingLocked(t0.Add(tt.at)); got != tt.want {
			t.Errorf("draining at %v = %v, want %v", tt.at, got, tt.want)
		}
	}
	late := t0.Add(10 * time.Second)
	r.cur = &phaseRun{Phase: Phase{Fault: FaultGoAway}}
	if !r.drainingLocked(late) {
		t.Errorf("not draining during a GOAWAY phase")
	}
	r.cur = &phaseRun{Phase: Phase{Fault: FaultDuplicate}}
	if r.drainingLocked(late) {
		t.Errorf("draining during a dup phase outside the windows")
	}
}

// limitRunner is a runner with a socket limit, its channels under test and
// the state checkLimit keeps.
func limitRunner(limit int, compare string) *runner {
	cfg := Config{Policy: "leakproof_round_robin", Compare: compare, SocketLimit: limit, DrainTimeout: time.Second, RemovalSlack: time.Second}
	r := &runner{cfg: cfg, chans: newUnderTest(cfg)}
	r.main = r.chans[0]
	r.streak = map[string]int{}
	r.lastGone = map[string]time.Time{}
	return r
}

// Over the limit in two samples in a row fails, once per streak; a sample
// within the limit ends the streak; each channel's most sockets to one
// backend are recorded with where.
func TestJudgeLimitNeedsTwoSamplesInARow(t *testing.T) {
	r := limitRunner(1, "")
	t0 := time.Now()
	sample := func(at float64, phase Fault, socks map[string]int) {
		r.checkLimit(t0.Add(time.Duration(at*float64(time.Second))), Sample{At: secs(at), Phase: phase, Sockets: socks})
	}
	sample(1, "", map[string]int{"b0": 2, "b1": 1})
	sample(2, "", map[string]int{"b0": 1, "b1": 1}) // b0's streak ends
	sample(3, "", map[string]int{"b0": 2, "b1": 1})
	if len(r.limitFailures) != 0 {
		t.Fatalf("failed without two samples in a row over the limit: %q", r.limitFailures)
	}
	sample(4, FaultDuplicate, map[string]int{"b0": 2, "b1": 1})
	sample(5, FaultDuplicate, map[string]int{"b0": 3, "b1": 1})
	if want := []string{"2 sockets to b0 at 4.0s (dup)"}; !reflect.DeepEqual(r.limitFailures, want) {
		t.Errorf("failures = %q, want %q", r.limitFailures, want)
	}
	if r.streak["b0"] != 3 || r.streak["b1"] != 0 {
		t.Errorf("streaks = %v", r.streak)
	}
	if l := r.main.limit; l.max != 3 || l.where != "b0 at 5.0s (dup)" {
		t.Errorf("most sockets = %+v", l)
	}
	if c := r.limitCheck(r.main); c.Pass {
		t.Errorf("limitCheck passed: %s", c.Detail)
	}
}

// At the limit is within it; without a limit nothing fails, but the most
// sockets are still recorded.
func TestJudgeLimitAtAndWithout(t *testing.T) {
	t0 := time.Now()
	r := limitRunner(2, "")
	for i := range 3 {
		r.checkLimit(t0.Add(time.Duration(i)*time.Second), Sample{At: secs(float64(i)), Sockets: map[string]int{"b0": 2}})
	}
	if len(r.limitFailures) != 0 || r.streak["b0"] != 0 {
		t.Errorf("at the limit: failures %q, streak %d", r.limitFailures, r.streak["b0"])
	}
	r = limitRunner(0, "")
	for i := range 3 {
		r.checkLimit(t0.Add(time.Duration(i)*time.Second), Sample{At: secs(float64(i)), Sockets: map[string]int{"b0": 4}})
	}
	if len(r.limitFailures) != 0 || r.streak["b0"] != 0 {
		t.Errorf("without a limit: failures %q, streak %d", r.limitFailures, r.streak["b0"])
	}
	if l := r.main.limit; l.max != 4 || l.where != "b0 at 0.0s" {
		t.Errorf("most sockets = %+v", l)
	}
}

// A backend removed within the removal bound (its end included) and any
// backend in a GOAWAY drain window are excused: their sockets neither count
// nor keep a streak.
func TestJudgeLimitExcusesDrains(t *testing.T) {
	t0 := time.Now()
	r := limitRunner(1, "")
	over := map[string]int{"b0": 2, "b1": 2}
	r.checkLimit(t0, Sample{Sockets: over})
	r.lastGone["b0"] = t0.Add(-time.Second) // bound 2s: excused at t0+1s
	r.checkLimit(t0.Add(time.Second), Sample{At: secs(1), Sockets: over})
	if r.streak["b0"] != 0 || len(r.limitFailures) != 1 || r.limitFailures[0] != "2 sockets to b1 at 1.0s" {
		t.Fatalf("within the removal bound: streak %v, failures %q", r.streak, r.limitFailures)
	}
	r.checkLimit(t0.Add(2*time.Second+time.Millisecond), Sample{At: secs(2), Sockets: over})
	if r.streak["b0"] != 1 {
		t.Errorf("past the removal bound: b0's streak %d, want 1", r.streak["b0"])
	}
	if l := r.main.limit; l.max != 2 || l.where != "b1 at 0.0s" && l.where != "b0 at 0.0s" {
		t.Errorf("most sockets = %+v", l)
	}

	r = limitRunner(1, "")
	r.drainWindows = []timeWindow{{t0, t0.Add(time.Second)}}
	r.checkLimit(t0, Sample{Sockets: map[string]int{"b0": 3}})
	r.checkLimit(t0.Add(time.Second), Sample{Sockets: map[string]int{"b0": 3}})
	if len(r.limitFailures) != 0 || r.streak["b0"] != 0 || r.main.limit.max != 0 {
		t.Errorf("in a drain window: failures %q, streak %d, most %d", r.limitFailures, r.streak["b0"], r.main.limit.max)
	}
	// At exactly the removal bound the backend is still excused.
	r = limitRunner(1, "")
	r.lastGone["b0"] = t0
	for _, d := range []time.Duration{0, 2 * time.Second} {
		r.checkLimit(t0.Add(d), Sample{Sockets: map[string]int{"b0": 2}})
	}
	if len(r.limitFailures) != 0 || r.streak["b0"] != 0 {
		t.Errorf("at the removal bound: failures %q, streak %d", r.limitFailures, r.streak["b0"])
	}
}

// The comparison channel's most sockets are recorded but never judged
// against the limit, and its excuses do not touch the main channel's
// streak.
func TestJudgeLimitRecordsTheComparisonChannel(t *testing.T) {
	t0 := time.Now()
	r := limitRunner(1, "round_robin")
	cmp := r.chans[1]
	for i := range 3 {
		r.checkLimit(t0.Add(time.Duration(i)*time.Second), Sample{At: secs(float64(i)), Sockets: map[string]int{"b0": 1}, CompareSockets: map[string]int{"b1": 2 + i}})
	}
	if len(r.limitFailures) != 0 || r.streak["b1"] != 0 {
		t.Errorf("the comparison channel's sockets were judged: failures %q, streaks %v", r.limitFailures, r.streak)
	}
	if cmp.limit.max != 4 || cmp.limit.where != "b1 at 2.0s" || r.main.limit.max != 1 {
		t.Errorf("most sockets: compare %+v, main %+v", cmp.limit, r.main.limit)
	}
}

// Only the first ten limit failures are listed.
func TestJudgeLimitFailuresAreBounded(t *testing.T) {
	t0 := time.Now()
	r := limitRunner(1, "")
	over := map[string]int{}
	for i := range 12 {
		over[fmt.Sprintf("b%d", i)] = 2
	}
	r.checkLimit(t0, Sample{Sockets: over})
	r.checkLimit(t0.Add(time.Second), Sample{Sockets: over})
	if len(r.limitFailures) != 10 {
		t.Errorf("listed %d failures, want 10", len(r.limitFailures))
	}
}

// judgedRunner is a runner at the end of a clean run of one fault, with a
// comparison channel, as result finds it.
func judgedRunner(t *testing.T) *runner {
	cfg := Config{
		Policy: "leakproof_round_robin", Compare: "round_robin", Duration: 30 * time.Second,
		Faults: []Fault{FaultDuplicate}, SocketLimit: 1, MaxFailureRate: 0.01,
		DrainTimeout: time.Second, RemovalSlack: 500 * time.Millisecond,
	}
	sub := trace.Subscribe(1, func(*trace.Event) bool { return false })
	t.Cleanup(sub.Close)
	r := &runner{cfg: cfg, start: time.Now().Add(-31 * time.Second), chans: newUnderTest(cfg), trace: trace.NewChecker(), sub: sub, inRun: newInRun()}
	r.main = r.chans[0]
	r.main.stats.ok.Add(100)
	r.chans[1].stats.ok.Add(40)
	r.chans[1].stats.failed.Add(1)
	r.info = []BackendInfo{{Name: "b0", Role: roleRegular}, {Name: "b1", Role: roleRegular}}
	r.phases = []*phaseRun{{Phase: Phase{Fault: FaultDuplicate, Start: secs(10), End: secs(20)}, updates: 2}}
	r.closedOK = 2
	r.failures = []string{"one RPC failed"}
	r.main.removals.add(Removal{Backend: "b1", Outcome: RemovalReleased, After: secs(0.2)})
	r.chans[1].removals.add(Removal{Backend: "b1", Outcome: RemovalLeaked, After: secs(2)})
	return r
}

// result gathers what the run saw and judges it: the checks in the
// verdict's order, the final readings from the last sample, and a pass that
// an informational check cannot overturn.
func TestJudgeResult(t *testing.T) {
	r := judgedRunner(t)
	r.samples = []Sample{
		{At: secs(10), Goroutines: 50, FDs: 30, ClientFDs: 4, HeapInUse: 1 << 20, Records: 3},
		{At: secs(31), Goroutines: 20, FDs: 12, ClientFDs: 1, HeapInUse: 1 << 19, Records: 1},
	}
	res := r.result(nil, nil)
	var names []string
	for _, c := range res.Checks {
		names = append(names, c.Name)
		if !c.Pass && !c.Info {
			t.Errorf("check %q failed: %s", c.Name, c.Detail)
		}
	}
	cmp := "compare round_robin: "
	want := []string{CheckRPCFailures, CheckRemovals, CheckSocketLimit, CheckSubchannels, CheckClosed, CheckBackendConns, CheckClientBudget,
		CheckGrowth, CheckTrace, CheckGoroutines, CheckFDs, CheckSockets, CheckFaults, cmp + CheckRPCFailures, cmp + CheckRemovals, cmp + CheckSocketLimit}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("checks = %q, want %q", names, want)
	}
	if !res.Pass {
		t.Errorf("a run whose only failures are the comparison channel's did not pass: %s", res.Verdict())
	}
	if want := (Totals{Goroutines: 20, FDs: 12, Sockets: 1, HeapInUse: 1 << 19, Records: 1}); res.Final != want {
		t.Errorf("final = %+v, want %+v", res.Final, want)
	}
	if res.RPCs.OK != 100 || res.CompareRPCs == nil || res.CompareRPCs.Failed != 1 || res.Removals.Released != 1 || res.CompareRemovals == nil || res.CompareRemovals.Leaked != 1 {
		t.Errorf("RPCs %+v / %+v, removals %+v / %+v", res.RPCs, res.CompareRPCs, res.Removals, res.CompareRemovals)
	}
	if time.Duration(res.RemovalBound) != 1500*time.Millisecond || time.Duration(res.Elapsed) < 31*time.Second || len(res.Phases) != 1 || len(res.Failures) != 1 {
		t.Errorf("bound %v, elapsed %v, phases %d, failures %d", time.Duration(res.RemovalBound), time.Duration(res.Elapsed), len(res.Phases), len(res.Failures))
	}

	// A check that counts fails the run.
	r.closedFailed, r.closedFailures = 1, []string{"channel churn-1: 1 socket(s) (b0:1) still open 2s after Close"}
	if res := r.result(nil, nil); res.Pass {
		t.Errorf("a run with a closed channel that kept a socket passed")
	}
}

// A run that took no sample has no final readings.
func TestJudgeResultWithoutSamples(t *testing.T) {
	res := judgedRunner(t).result(nil, nil)
	if res.Final != (Totals{}) {
		t.Errorf("final = %+v without a sample", res.Final)
	}
}

// An unasked removal is named when it outlived the bound, not at it; a
// leaked one is named as leaked, not as unasked.
func TestJudgeRemovalCheckNamesOnlyUnaskedPastTheBound(t *testing.T) {
	const bound = 2 * time.Second
	rs := Removals{Unasked: 2, Leaked: 1, List: []Removal{
		{Backend: "b1", Addr: "127.0.0.2:80", RemovedAt: secs(1), Outcome: RemovalUnasked, After: jsontime.Duration(bound)},
		{Backend: "b2", Addr: "127.0.0.3:80", RemovedAt: secs(2), Outcome: RemovalLeaked, After: secs(3), Sockets: 1},
		{Backend: "b3", Addr: "127.0.0.4:80", RemovedAt: secs(3), Outcome: RemovalUnasked, After: secs(2.5)},
	}}
	c := removalCheck(CheckRemovals, rs, bound)
	if c.Pass {
		t.Errorf("a leaked removal passed: %s", c.Detail)
	}
	if !strings.Contains(c.Detail, "longer than the bound: b3 (127.0.0.4:80) removed from DNS at 3.00s, still open 2.5s later; bound 2s") {
		t.Errorf("detail does not name b3 alone: %s", c.Detail)
	}
	if strings.Contains(c.Detail, "b1 (") || strings.Contains(c.Detail, "b2 (127.0.0.3:80) removed from DNS") {
		t.Errorf("detail names an unasked removal at the bound or a leaked one as unasked: %s", c.Detail)
	}
	if !strings.HasPrefix(c.Detail, "1 leaked: ") || !strings.Contains(c.Detail, "; 3 removal(s), 2 never learned") {
		t.Errorf("detail: %s", c.Detail)
	}
}

// The baseline checks' evidence, line by line: goroutines grouped by stack
// when leaktest grouped them, each descriptor, each backend's sockets and
// their holders, and what could not be read in both descriptor checks.
func TestJudgeBaselineEvidence(t *testing.T) {
	backend := netip.MustParseAddrPort("127.0.0.1:50051")
	sock := &leaktest.Socket{Inode: 42, Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: backend, State: "ESTABLISHED"}
	fd := leaktest.FD{Num: 10, Target: "socket:[42]", Socket: sock}
	held := leaktest.HeldSocket{Socket: *sock, PID: 4242, Command: "worker"}
	groups := []leaktest.GoroutineGroup{
		{Count: 3, State: "select", Top: "main.worker", CreatedBy: "main.start", At: "main.go:10"},
		{Count: 1, State: "chan receive", Top: "main.wait"},
	}
	for _, tt := range []struct {
		name  string
		leaks *leaktest.Leaks
		want  map[string]string // check → its whole detail
	}{
		{"goroutines ungrouped", &leaktest.Leaks{Deadline: 5 * time.Second, Goroutines: errors.New("found unexpected goroutines")}, map[string]string{
			CheckGoroutines: "goroutines not running at the baseline, after 5s: found unexpected goroutines",
		}},
		{"goroutines grouped", &leaktest.Leaks{Deadline: 5 * time.Second, Goroutines: errors.New("found unexpected goroutines"), Groups: groups}, map[string]string{
			CheckGoroutines: "goroutines not running at the baseline, after 5s, grouped by stack:\n\t" + groups[0].Headline() + "\n\t" + groups[1].Headline(),
		}},
		{"descriptors", &leaktest.Leaks{Deadline: time.Second, FDs: []leaktest.FD{{Num: 9, Target: "/tmp/x"}, fd}}, map[string]string{
			CheckFDs: "2 descriptor(s) not open at the baseline, after 1s:\n\tfd 9 -> /tmp/x\n\t" + fd.String(),
		}},
		{"sockets", &leaktest.Leaks{Deadline: time.Second, Backends: []leaktest.BackendSockets{{Backend: backend, Baseline: 1, Now: 3, FDs: []leaktest.FD{fd}, Elsewhere: []leaktest.HeldSocket{held}}}}, map[string]string{
			CheckSockets: "3 socket(s) to backend 127.0.0.1:50051 after 1s, 1 at the baseline:\n\t" + fd.String() + "\n\t" + held.String(),
		}},
		{"unreadable", &leaktest.Leaks{Errors: []error{errors.New("no /proc"), errors.New("bad address")}}, map[string]string{
			CheckFDs:     "not checked: no /proc\nnot checked: bad address",
			CheckSockets: "not checked: no /proc\nnot checked: bad address",
		}},
		{"unreadable and a descriptor", &leaktest.Leaks{Deadline: time.Second, Errors: []error{errors.New("no /proc")}, FDs: []leaktest.FD{{Num: 9, Target: "/tmp/x"}}}, map[string]string{
			CheckFDs:     "not checked: no /proc\n1 descriptor(s) not open at the baseline, after 1s:\n\tfd 9 -> /tmp/x",
			CheckSockets: "not checked: no /proc",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range baselineChecks(tt.leaks) {
				want, fails := tt.want[c.Name]
				if !fails {
					want = "back at the baseline taken before the soak"
				}
				if c.Pass == fails || c.Detail != want {
					t.Errorf("%s: pass %v, detail:\n%s\nwant pass %v, detail:\n%s", c.Name, c.Pass, c.Detail, !fails, want)
				}
			}
		})
	}
}

// The removal check's whole detail: the counts it states, and nothing of a
// kind it has none of.
func TestJudgeRemovalCheckDetail(t *testing.T) {
	const bound = 2 * time.Second
	for _, tt := range []struct {
		name string
		rs   Removals
		pass bool
		want string
	}{
		{"none", Removals{}, true, "0 removal(s); bound 2s"},
		{"each outcome", Removals{Released: 1, Readded: 2, Open: 3, Unasked: 4, SlowestRelease: secs(0.0454)}, true,
			"10 removal(s), 1 released (the slowest after 45ms), 2 re-added before release, 3 still within the bound when the run ended, " +
				"4 never learned (the channel did not ask DNS while the backend was removed: not a leak of the policy; cure: the policy's reresolveInterval, or the servers' MaxConnectionAge); bound 2s"},
		{"unasked within the bound", Removals{Unasked: 1, List: []Removal{{Backend: "b1", Outcome: RemovalUnasked, After: secs(1)}}}, true,
			"1 removal(s), 1 never learned (the channel did not ask DNS while the backend was removed: not a leak of the policy; cure: the policy's reresolveInterval, or the servers' MaxConnectionAge); bound 2s"},
		{"leaked", Removals{Leaked: 2, List: []Removal{
			{Backend: "b1", Addr: "127.0.0.1:1", Outcome: RemovalLeaked, RemovedAt: secs(1), After: secs(2.5), Sockets: 1},
			{Backend: "b2", Addr: "127.0.0.1:2", Outcome: RemovalLeaked, RemovedAt: secs(2), After: secs(3), Sockets: 2},
		}}, false,
			"2 leaked: backend b1 (127.0.0.1:1): 1 socket(s) still open 2.5s after the resolver removed it at 1.00s, channel still open; bound 2s; " +
				"backend b2 (127.0.0.1:2): 2 socket(s) still open 3s after the resolver removed it at 2.00s, channel still open; bound 2s; 2 removal(s); bound 2s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := removalCheck(CheckRemovals, tt.rs, bound)
			if c.Name != CheckRemovals || c.Pass != tt.pass || c.Detail != tt.want {
				t.Errorf("removalCheck = %q pass %v:\n%s\nwant pass %v:\n%s", c.Name, c.Pass, c.Detail, tt.pass, tt.want)
			}
		})
	}
}
