package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/soak"
	"github.com/leakproof/leakproof/trace"
)

func runSoak(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"soak"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSoakBadFlagsExit2WithUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"--duration", "soon"}, `invalid value "soon" for flag -duration`},
		{[]string{"--duration", "0s"}, "--duration and --drain-timeout must be positive"},
		{[]string{"--duration", "2s"}, "duration 2s is too short for 13 fault(s)"},
		{[]string{"--backends", "2"}, "backends 2 must be between 3 and 32"},
		{[]string{"--backends", "many"}, `invalid value "many" for flag -backends`},
		{[]string{"--policy", "no_such_policy"}, `policy "no_such_policy" is not registered`},
		{[]string{"--compare", "nope"}, `policy "nope" is not registered`},
		{[]string{"--policy", "leakproof_guard:nope"}, `policy "leakproof_guard:nope": child "nope" is not registered`},
		{[]string{"--faults", "goaway,meteor"}, `--faults: unknown fault "meteor"`},
		{[]string{"--faults", "-goaway,goaway"}, "leaves no fault"},
		{[]string{"--max-failure-rate", "2"}, "--max-failure-rate 2 must be between 0 and 1"},
		{[]string{"--workers", "-1"}, "--workers -1 must not be negative"},
		{[]string{"--workers", "0", "--streams", "0"}, "no load"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--report", filepath.Join(dir, "no", "such", "dir", "r.html")}, "--report: open"},
		{[]string{"--trace", filepath.Join(dir, "no", "such", "dir", "t.jsonl")}, "--trace: open"},
		{[]string{"--heap-profiles", filepath.Join(dir, "no", "such", "dir")}, "--heap-profiles " + `"` + filepath.Join(dir, "no", "such", "dir") + `": not a directory`},
	} {
		start := time.Now()
		code, stdout, stderr := runSoak(t, tc.args...)
		if code != 2 {
			t.Errorf("soak %q: exit %d, want 2; stderr:\n%s", tc.args, code, stderr)
		}
		if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "usage: leakproof soak") {
			t.Errorf("soak %q: stderr lacks %q or the usage:\n%s", tc.args, tc.want, stderr)
		}
		if stdout != "" {
			t.Errorf("soak %q: wrote to stdout: %q", tc.args, stdout)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("soak %q: took %v to reject", tc.args, d)
		}
	}
	code, _, stderr := runSoak(t, "-h")
	if code != 0 || !strings.Contains(stderr, "usage: leakproof soak") || !strings.Contains(stderr, "resolver-error") {
		t.Errorf("soak -h: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestSoakJSONReportAndTrace runs a short soak with every output and a
// comparison with grpc's round_robin, which opens two connections to the
// backend that two overlapping endpoints share. Its phases are 1.3s long,
// several sample intervals even on a loaded machine, so the second
// connection grpc's round_robin opens is seen.
func TestSoakJSONReportAndTrace(t *testing.T) {
	dir := t.TempDir()
	report, tracePath := filepath.Join(dir, "soak.html"), filepath.Join(dir, "t.jsonl")
	code, stdout, stderr := runSoak(t, "--duration", "6s", "--faults", "goaway,overlap,rst",
		"--compare", "round_robin", "--json", "--report", report, "--trace", tracePath, "--heap-profiles", dir)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	var res soak.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout)
	}
	if !res.Pass || res.Policy != "leakproof_round_robin" || res.Compare != "round_robin" || len(res.Phases) != 3 || len(res.Checks) == 0 || res.RPCs.OK == 0 {
		t.Errorf("JSON result: pass %v, policy %q, compare %q, %d phases, %d checks, %d RPCs", res.Pass, res.Policy, res.Compare, len(res.Phases), len(res.Checks), res.RPCs.OK)
	}
	for _, p := range res.Phases {
		if p.Fault != soak.FaultOverlap {
			continue
		}
		if p.MaxSockets["b0"] != 1 || p.CompareMaxSockets["b0"] != 2 {
			t.Errorf("overlap: max sockets to b0 %d (ours), %d (round_robin); want 1 and 2", p.MaxSockets["b0"], p.CompareMaxSockets["b0"])
		}
	}
	// Not a terminal: plain lines, no carriage returns.
	if !strings.Contains(stderr, "goaway:") || strings.Contains(stderr, "\r") {
		t.Errorf("stderr is not plain phase lines:\n%q", stderr)
	}

	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "PASS", "soak passed", soak.CheckRemovals, "round_robin (comparison)"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}

	// Both heap profiles: gzip-compressed pprof protobufs, named on stderr.
	for _, name := range []string{"heap-warm.pb.gz", "heap-end.pb.gz"} {
		path := filepath.Join(dir, name)
		if !strings.Contains(stderr, "heap profile "+path) {
			t.Errorf("stderr does not name %s:\n%s", path, stderr)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			continue
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		pb, err := io.ReadAll(zr)
		if err != nil || !bytes.Contains(pb, []byte("inuse_space")) {
			t.Errorf("%s: not a heap profile (%d bytes, err %v)", name, len(pb), err)
		}
	}

	events := readTraceFile(t, tracePath)
	if rep := trace.Check(events); !rep.Clean() || rep.Events == 0 || rep.Events != res.Trace.Events || rep.Live != 0 {
		t.Errorf("trace file: %d events (result says %d), %d live, problems %v", rep.Events, res.Trace.Events, rep.Live, rep.Problems)
	}
}

// TestSoakLeakyPolicyAloneFailsAndGuardedPasses soaks a policy that never
// shuts down the SubConns of removed addresses. Alone: exit 1, and stderr
// says which backend kept its socket after removal. The same soak under
// leakproof_guard: exit 0, the removed backends' sockets closed within the
// bound while the channel is open, and the trace shows each orphan, then
// its shutdown, then its destroy.
func TestSoakLeakyPolicyAloneFailsAndGuardedPasses(t *testing.T) {
	code, stdout, stderr := runSoak(t, "--duration", "4500ms", "--faults", "dup,overlap", "--policy", leakzoo.ForgetRemoved, "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"soak FAILED", soak.CheckRemovals, "backend b3", "still open", "after the resolver removed it"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "leakproof soak: FAIL") {
		t.Errorf("stdout lacks the failed verdict table:\n%s", stdout)
	}

	dir := t.TempDir()
	tracePath := filepath.Join(dir, "t.jsonl")
	code, stdout, stderr = runSoak(t, "--duration", "4500ms", "--faults", "dup,overlap", "--policy", "leakproof_guard:"+leakzoo.ForgetRemoved, "--quiet", "--json", "--trace", tracePath,
		"--heap-profiles", dir) // --heap-profiles with --quiet: no progress lines to end
	if code != 0 {
		t.Fatalf("guarded: exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "heap-end.pb.gz")); err != nil {
		t.Errorf("guarded, --quiet: %v", err)
	}
	var res soak.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Removals.Released == 0 {
		t.Errorf("guarded: no removed backend seen released: %+v", res.Removals)
	}
	events := readTraceFile(t, tracePath)
	rep := trace.Check(events)
	if !rep.Clean() || len(rep.Orphans) == 0 {
		t.Fatalf("guarded trace: %d problems %v, %d orphans; want clean with orphans", len(rep.Problems), rep.Problems, len(rep.Orphans))
	}
	for _, o := range rep.Orphans {
		var order []trace.Kind
		for _, e := range events {
			if e.Subchannel == o.Subchannel && (e.Kind == trace.KindOrphan || e.Kind == trace.KindShutdown || e.Kind == trace.KindDestroy) {
				order = append(order, e.Kind)
			}
		}
		if len(order) != 3 || order[0] != trace.KindOrphan || order[1] != trace.KindShutdown || order[2] != trace.KindDestroy {
			t.Errorf("subchannel #%d %s: %v, want orphan, shutdown, destroy", o.Subchannel, o.Key, order)
		}
	}
}

// TestSoakGuardedGRPCPoliciesPassEveryFault runs the full soak, every
// fault, on grpc's policies under the guard (13s: phases of about a second;
// at 9s, each fault's shortest phase, a loaded machine sometimes ended a
// phase before its fault had shown, and "faults injected" failed).
func TestSoakGuardedGRPCPoliciesPassEveryFault(t *testing.T) {
	for _, policy := range soak.GuardedGRPCPolicies {
		t.Run(policy, func(t *testing.T) {
			code, stdout, stderr := runSoak(t, "--duration", "13s", "--policy", policy, "--quiet")
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
			}
			if !strings.Contains(stdout, "leakproof soak: PASS") {
				t.Errorf("stdout lacks the passed verdict:\n%s", stdout)
			}
		})
	}
}

func TestSoakProgressOnATerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, total: 30 * time.Second}
	s := soak.Sample{At: jsontime.Duration(1500 * time.Millisecond), Phase: soak.FaultGoAway, Goroutines: 42, FDs: 17,
		Sockets: map[string]int{"b1": 2, "b0": 1, "b2": 0}, Subchannels: 3, RPCsOK: 100, RPCsFailed: 1}
	p.sample(s)
	p.logf("phase line")
	p.done()
	want := "\r\x1b[K[  1.5s/30s] goaway         rpc ok 100 failed 1  goroutines 42  fds 17  sockets b0:1 b1:2  subchannels 3" +
		"\r\x1b[Kphase line\n" +
		"[  1.5s/30s] goaway         rpc ok 100 failed 1  goroutines 42  fds 17  sockets b0:1 b1:2  subchannels 3\n"
	if b.String() != want {
		t.Errorf("terminal output:\n%q\nwant:\n%q", b.String(), want)
	}
	if isTerminal(&b) {
		t.Error("a buffer is a terminal")
	}
}

// TestSoakXDSPasses runs a short soak under the embedded xDS control plane,
// every fault: the verdict passes, the result says xDS, every xDS-only fault
// ran and the control plane's work is in the phases' evidence and the
// report.
func TestSoakXDSPasses(t *testing.T) {
	report := filepath.Join(t.TempDir(), "soak.html")
	code, stdout, stderr := runSoak(t, "--xds", "--duration", "12s", "--quiet", "--json", "--report", report)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	var res soak.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if !res.XDS || !res.Pass || res.RPCs.OK == 0 {
		t.Errorf("result: xds %v, pass %v, %d RPCs; want an xDS run that passed with RPCs", res.XDS, res.Pass, res.RPCs.OK)
	}
	ran := map[soak.Fault]string{}
	for _, p := range res.Phases {
		ran[p.Fault] = p.Evidence
	}
	for _, f := range soak.XDSFaults() {
		if _, ok := ran[f]; !ok {
			t.Errorf("fault %s did not run", f)
		}
	}
	for _, f := range []soak.Fault{soak.FaultFlap, soak.FaultXDSNACK, soak.FaultXDSRestart} {
		if !strings.Contains(ran[f], "control plane:") {
			t.Errorf("fault %s: evidence %q says nothing of the control plane", f, ran[f])
		}
	}
	html, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"under xDS", string(soak.FaultXDSClusterSwitch), string(soak.FaultXDSLocalityDup)} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestSoakXDSLeakyPolicyFails: the control plane selects the deliberately
// leaky policy (TypedStruct); the xDS soak fails and names the backend whose
// socket stayed open after an EDS push removed it. Under leakproof_guard the
// same policy passes, its orphans reclaimed.
func TestSoakXDSLeakyPolicyFails(t *testing.T) {
	code, stdout, stderr := runSoak(t, "--xds", "--duration", "4500ms", "--faults", "dup,overlap", "--policy", leakzoo.ForgetRemoved, "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"soak FAILED", soak.CheckRemovals, "backend b3", "still open", "after the resolver removed it"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, leakzoo.ForgetRemoved+" under xDS") {
		t.Errorf("stdout lacks the policy under xDS:\n%s", stdout)
	}

	// The same policy under the guard, selected the same way: the orphans
	// are reclaimed and the soak passes.
	tracePath := filepath.Join(t.TempDir(), "t.jsonl")
	code, stdout, stderr = runSoak(t, "--xds", "--duration", "4500ms", "--faults", "dup,overlap", "--policy", "leakproof_guard:"+leakzoo.ForgetRemoved, "--quiet", "--json", "--trace", tracePath)
	if code != 0 {
		t.Fatalf("guarded: exit %d, want 0; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	var res soak.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	events := readTraceFile(t, tracePath)
	if rep := trace.Check(events); !rep.Clean() || len(rep.Orphans) == 0 || res.Removals.Released == 0 {
		t.Errorf("guarded: trace clean %v with %d orphans reclaimed, %d removals released; want a clean trace, orphans and releases", rep.Clean(), len(rep.Orphans), res.Removals.Released)
	}
}

// TestSoakXDSWeightedLocalities: --xds-weighted-localities splits each
// assignment between two localities weighted 1:3 and runs the policy as
// WrrLocality's endpoint-picking policy: the main channel gets one manager
// per locality, the run passes, and the removal checks see the sockets the
// managers own under xDS (socket_open and socket_close in the trace, and
// removed backends released).
func TestSoakXDSWeightedLocalities(t *testing.T) {
	tracePath := filepath.Join(t.TempDir(), "t.jsonl")
	code, stdout, stderr := runSoak(t, "--resolver", "xds", "--xds-weighted-localities", "--duration", "4500ms", "--faults", "flap,dup", "--quiet", "--json", "--trace", tracePath)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	var res soak.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if !res.XDS || !res.XDSWeightedLocalities || !res.Pass || res.Removals.Released == 0 {
		t.Errorf("result: xds %v, weighted %v, pass %v, %d removals released; want a passing weighted xDS run with releases", res.XDS, res.XDSWeightedLocalities, res.Pass, res.Removals.Released)
	}
	events := readTraceFile(t, tracePath)
	managers := map[uint64]bool{}
	kinds := map[trace.Kind]int{}
	for _, e := range events {
		if strings.HasSuffix(e.Target, "main") {
			if e.Subchannel != 0 {
				managers[e.Manager] = true
			}
			kinds[e.Kind]++
		}
	}
	if len(managers) < 2 || kinds[trace.KindSocketOpen] == 0 || kinds[trace.KindSocketClose] == 0 {
		t.Errorf("main channel: %d managers with subchannels, %d socket_open, %d socket_close; want one manager per locality and owned sockets", len(managers), kinds[trace.KindSocketOpen], kinds[trace.KindSocketClose])
	}
	if rep := trace.Check(events); !rep.Clean() {
		t.Errorf("trace not clean: %v", rep.Problems)
	}
}

// readTraceFile reads every event of the trace file a soak wrote.
func readTraceFile(t *testing.T, path string) []trace.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := trace.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return events
}
