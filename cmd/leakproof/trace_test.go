package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

// runTrace runs `leakproof trace args...` in-process with stdin and returns
// its exit code, stdout and stderr.
func runTrace(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := traceRun(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// traceOf renders events as a JSON-lines trace.
func traceOf(t testing.TB, events ...trace.Event) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// ev is a hand-made event of subchannel sc on manager 1.
func ev(seq, sc uint64, kind trace.Kind, before, after int, holder string) trace.Event {
	return trace.Event{
		Seq: seq, Time: time.Date(2026, 1, 2, 3, 4, 5, int(seq), time.UTC), Manager: 1, Target: "dns:///svc",
		Subchannel: sc, Key: "10.0.0.1:443", Kind: kind, RefsBefore: before, RefsAfter: after, Holder: holder, State: "READY",
	}
}

// missingDestroy: subchannel #7 is released and shut down, and its socket
// closes, but destroy never comes.
func missingDestroy() []trace.Event {
	open := ev(4, 7, trace.KindSocketOpen, 1, 1, "")
	open.Socket = &trace.SocketRef{ID: 1, Local: "10.0.0.9:5000", Remote: "10.0.0.1:443"}
	closed := ev(7, 7, trace.KindSocketClose, 0, 0, "")
	closed.Socket = open.Socket
	return []trace.Event{
		{Seq: 1, Manager: 1, Target: "dns:///svc", Kind: trace.KindManagerOpen},
		ev(2, 7, trace.KindCreate, 0, 0, "pick_first"),
		ev(3, 7, trace.KindRef, 0, 1, "pick_first"),
		open,
		ev(5, 7, trace.KindUnref, 1, 0, "pick_first"),
		ev(6, 7, trace.KindShutdown, 0, 0, "pick_first"),
		closed,
	}
}

// unrefWithoutRef: subchannel #9 is released by a holder that never took
// a reference, after its only holder released it.
func unrefWithoutRef() []trace.Event {
	return []trace.Event{
		ev(1, 9, trace.KindCreate, 0, 0, "endpoint[0]"),
		ev(2, 9, trace.KindRef, 0, 1, "endpoint[0]"),
		ev(3, 9, trace.KindUnref, 1, 0, "endpoint[0]"),
		ev(4, 9, trace.KindUnref, 0, -1, "endpoint[1]"),
		ev(5, 9, trace.KindShutdown, 0, 0, "endpoint[1]"),
		ev(6, 9, trace.KindDestroy, 0, 0, ""),
	}
}

func TestTraceUsageErrors(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: leakproof trace"},
		{[]string{"tail"}, `unknown command "tail"`},
		{[]string{"watch"}, "--addr is required"},
		{[]string{"watch", "--addr", "localhost"}, "want HOST:PORT"},
		{[]string{"watch", "--addr", "127.0.0.1:1", "--count", "-1"}, "--count -1"},
		{[]string{"watch", "--addr", "127.0.0.1:1", "extra"}, `unexpected argument "extra"`},
		{[]string{"watch", "--from", "x", "--addr", "127.0.0.1:1"}, `invalid value "x" for flag -from`},
		{[]string{"list"}, "--addr is required"},
		{[]string{"list", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"check"}, "give one trace FILE"},
		{[]string{"check", "a", "b"}, "give one trace FILE"},
		{[]string{"check", "a", "--addr", "127.0.0.1:1"}, "not both"},
		{[]string{"check", "--addr", "127.0.0.1:1", "--grace", "-1s"}, "--grace -1s"},
		{[]string{"check", "--addr", "127.0.0.1:1", "--grace", "0s"}, "--grace 0s"},
		{[]string{"check", "--addr", "127.0.0.1"}, "want HOST:PORT"},
		{[]string{"show", "f"}, "--subchannel is required"},
		{[]string{"show", "--subchannel", "3"}, "give one trace FILE"},
		{[]string{"show", "f", "--subchannel", "three"}, `invalid value "three"`},
	} {
		code, out, errOut := runTrace(t, context.Background(), "", tc.args...)
		if code != exitError || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "usage:") {
			t.Errorf("trace %q: exit %d, stderr %q; want 2 and a usage naming %q", tc.args, code, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("trace %q wrote %q to stdout", tc.args, out)
		}
	}
	if code, out, _ := runTrace(t, context.Background(), "", "help"); code != exitOK || !strings.Contains(out, "exit status") {
		t.Errorf("trace help: exit %d, %q", code, out)
	}
	if code, _, errOut := runTrace(t, context.Background(), "", "check", "-h"); code != exitOK || !strings.Contains(errOut, "-grace") {
		t.Errorf("trace check -h: exit %d, %q", code, errOut)
	}
	// Through the command's own dispatch, too.
	var out, errOut bytes.Buffer
	if code := run([]string{"trace", "bogus"}, &out, &errOut); code != exitError || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("leakproof trace bogus: exit %d, %q", code, errOut.String())
	}
}

func TestTraceCheckNamesEachProblemAndItsEvidence(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	for _, tc := range []struct {
		name   string
		events []trace.Event
		want   []string
	}{
		{"missing destroy", missingDestroy(), []string{
			`leak: subchannel #7 10.0.0.1:443 (manager 1, target "dns:///svc"): shut down but never destroyed`,
			"seq=6 #7 10.0.0.1:443 shutdown",
		}},
		{"unref without ref", unrefWithoutRef(), []string{
			`unbalanced: subchannel #9 10.0.0.1:443 (manager 1, target "dns:///svc"): unref by "endpoint[1]" without a reference (seq 4)`,
			"seq=4 #9 10.0.0.1:443 unref 0->-1 holder=endpoint[1]",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "trace.jsonl")
			if err := os.WriteFile(path, []byte(traceOf(t, tc.events...)), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runTrace(t, context.Background(), "", "check", path)
			if code != exitProblem {
				t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			for _, want := range append(tc.want, "problem(s)") {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			// The same from standard input.
			if code, out2, _ := runTrace(t, context.Background(), traceOf(t, tc.events...), "check", "-"); code != exitProblem || !strings.Contains(out2, tc.want[0]) {
				t.Errorf("check -: exit %d\n%s", code, out2)
			}
		})
	}
}

func TestTraceCheckUnreadableInput(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	good := traceOf(t, missingDestroy()...)
	lines := strings.SplitAfter(good, "\n")
	truncated := strings.Join(lines[:3], "") + lines[3][:len(lines[3])/2]
	for _, tc := range []struct {
		name, input, want string
	}{
		{"garbage", "hello\nworld\n", "standard input: line 1: invalid character 'h'"},
		{"garbage in the middle", lines[0] + lines[1] + "{{{\n" + lines[2], "line 3: invalid character"},
		{"truncated last line", truncated, "line 4: unexpected end of JSON input"},
		{"not an event", lines[0] + `{"foo": 1}` + "\n", `line 2: not a trace event`},
		{"wrong types", `{"seq": "one", "event": "create"}` + "\n", "line 1: json: cannot unmarshal"},
		{"empty", "", "no trace events"},
		{"blank lines only", "\n\n  \n", "no trace events"},
		{"binary", "\x00\xff\xfe\n", "line 1:"},
	} {
		code, out, errOut := runTrace(t, context.Background(), tc.input, "check", "-")
		if code != exitError || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, code, errOut, tc.want)
		}
		if out != "" {
			t.Errorf("%s: stdout %q", tc.name, out)
		}
		if code, _, errOut := runTrace(t, context.Background(), tc.input, "show", "-", "--subchannel", "7"); code != exitError || !strings.Contains(errOut, tc.want) {
			t.Errorf("show, %s: exit %d, stderr %q", tc.name, code, errOut)
		}
	}
	code, _, errOut := runTrace(t, context.Background(), "", "check", filepath.Join(t.TempDir(), "missing.jsonl"))
	if code != exitError || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}

// recordCleanRun runs a client on the leakproof policy through address
// churn with a trace writer on a file, closes everything, and returns the
// file and the channel's events.
func recordCleanRun(t *testing.T) (string, []trace.Event) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := trace.NewWriter(f, 0, nil)
	bs := e2e.StartBackends(t, 3)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	for _, addrs := range [][]string{e2e.Addrs(bs), {bs[1].Addr()}, {bs[2].Addr(), bs[0].Addr()}} {
		c.R.UpdateState(e2e.AddrState(addrs...))
		c.WaitServed(addrs...)
	}
	c.CC.Close()
	c.Trace.CheckClean(t) // every subchannel destroyed: the writer has seen it all
	if err := tw.Close(); err != nil {
		t.Fatalf("trace writer: %v", err)
	}
	return path, c.Trace.Events()
}

func TestTraceCheckAndShowOnACleanRun(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	path, events := recordCleanRun(t)

	code, out, errOut := runTrace(t, context.Background(), "", "check", path)
	if code != exitOK || !strings.Contains(out, ": clean") || !regexp.MustCompile(`\d+ subchannel\(s\): (\d+) destroyed, 0 live`).MatchString(out) {
		t.Fatalf("check of a clean run: exit %d\n%s%s", code, out, errOut)
	}

	// show: every event of one subchannel, nothing else.
	var id uint64
	var want []trace.Event
	for _, e := range events {
		if e.Kind == trace.KindCreate && id == 0 {
			id = e.Subchannel
		}
		if id != 0 && e.Subchannel == id {
			want = append(want, e)
		}
	}
	code, out, errOut = runTrace(t, context.Background(), "", "show", path, "--subchannel", strconv.FormatUint(id, 10))
	if code != exitOK {
		t.Fatalf("show #%d: exit %d: %s", id, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want)+2 {
		t.Fatalf("show #%d printed %d lines, want a header, %d events and a verdict:\n%s", id, len(lines), len(want), out)
	}
	for i, e := range want {
		if !strings.Contains(lines[i+1], e.String()) {
			t.Errorf("line %d: %q, want event %q", i+1, lines[i+1], e.String())
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "destroyed after") {
		t.Errorf("verdict %q, want destroyed", lines[len(lines)-1])
	}
	code, _, errOut = runTrace(t, context.Background(), "", "show", "--subchannel", "999999", path)
	if code != exitProblem || !strings.Contains(errOut, "no event for subchannel #999999") {
		t.Errorf("show of an absent subchannel: exit %d, %q", code, errOut)
	}
}

// TestTraceCheckNamesAReclaimedOrphan: a trace in which the guard reclaimed
// a subchannel its policy forgot leaks nothing, and check still names the
// orphan and exits 1.
func TestTraceCheckNamesAReclaimedOrphan(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	orphan := ev(3, 11, trace.KindOrphan, 1, 1, "leaky_round_robin")
	orphan.Reason = "address 10.0.0.1:443 absent from the resolver state for 30.1s (orphanTimeout 30s); reclaim"
	events := []trace.Event{
		ev(1, 11, trace.KindCreate, 0, 0, "leaky_round_robin"),
		ev(2, 11, trace.KindRef, 0, 1, "leaky_round_robin"),
		orphan,
		ev(4, 11, trace.KindUnref, 1, 0, "leaky_round_robin"),
		ev(5, 11, trace.KindShutdown, 0, 0, "leaky_round_robin"),
		ev(6, 11, trace.KindDestroy, 0, 0, ""),
	}
	code, out, errOut := runTrace(t, context.Background(), traceOf(t, events...), "check", "-")
	if code != exitProblem {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		`orphan: subchannel #11 10.0.0.1:443 (manager 1, target "dns:///svc"): holder "leaky_round_robin" forgot it: address 10.0.0.1:443 absent from the resolver state for 30.1s`,
		"1 destroyed, 0 live: clean; 1 orphan(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
