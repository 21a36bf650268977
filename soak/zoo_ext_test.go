package soak_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/soak"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
)

// The leak zoo through the soak: every policy of internal/testing/leakzoo must
// fail a default-length soak through a leak check that names the leak, and
// pass every leak check under leakproof_guard where the guard can help.
// The default run soaks each policy for a few seconds on the faults that
// provoke its leak; LEAKPROOF_ZOO=1 soaks each for 30 seconds with every
// fault, as a user's CI would, and with -zoo.update writes the table of
// RELIABILITY.md from what it saw.
var updateZoo = flag.Bool("zoo.update", false, "with LEAKPROOF_ZOO=1: rewrite the rows of the leak zoo's table in ../RELIABILITY.md of the entries this run soaked")

// leakChecks are the checks that judge leaks; the others (RPC failures,
// faults injected) judge the run itself.
var leakChecks = []string{
	soak.CheckRemovals, soak.CheckSocketLimit, soak.CheckSubchannels, soak.CheckClosed,
	soak.CheckBackendConns, soak.CheckClientBudget, soak.CheckGrowth, soak.CheckTrace,
	soak.CheckGoroutines, soak.CheckFDs, soak.CheckSockets,
}

// zooCase is how the default run provokes one entry, and whether the guard
// can fix it.
type zooCase struct {
	faults []soak.Fault // the faults of the short run
	// d is the short run's length, if not the default 4.5s.
	d time.Duration
	// guarded is false where the leak is not a subchannel the guard owns;
	// guardShort runs the guarded soak in the short test too.
	guarded, guardShort bool
	why                 string // why not, for the table
	// names, if set, must be in the catching check's evidence.
	names string
	// drained is a leak of sockets to removed backends that leakproof's
	// drain bound closes: it is soaked under leakproof_round_robin too,
	// where the removal and subchannel checks must pass.
	drained bool
}

var zooCases = map[string]zooCase{
	leakzoo.ForgetRemoved:     {faults: []soak.Fault{soak.FaultDuplicate, soak.FaultOverlap}, guarded: true},
	leakzoo.Twin:              {faults: []soak.Fault{soak.FaultDuplicate, soak.FaultGoAway}, guarded: true},
	leakzoo.ReplaceRetained:   {faults: []soak.Fault{soak.FaultFlap, soak.FaultDuplicate}, guarded: true, guardShort: true},
	leakzoo.ShutdownLast:      {faults: []soak.Fault{soak.FaultFlap, soak.FaultDuplicate}, guarded: true},
	leakzoo.NewOnIdle:         {faults: []soak.Fault{soak.FaultGoAway, soak.FaultReset}, guarded: true, guardShort: true},
	leakzoo.GoroutinePerReady: {faults: []soak.Fault{soak.FaultGoAway}, d: 9 * time.Second, why: "the leak is the policy's own goroutines, not a subchannel"},
	leakzoo.StalePicker:       {faults: []soak.Fault{soak.FaultDuplicate, soak.FaultOverlap}, guarded: true, guardShort: true},
	leakzoo.AbandonedStream:   {faults: []soak.Fault{soak.FaultDuplicate, soak.FaultOverlap}, why: "the application's leak", drained: true},
	leakzoo.ChannelPerCall:    {faults: []soak.Fault{soak.FaultDuplicate}, why: "the application's leak"},
	leakzoo.StreamWatcher:     {faults: []soak.Fault{soak.FaultDuplicate}, why: "the application's leak"},
	leakzoo.InheritedSocket:   {faults: []soak.Fault{soak.FaultChurn, soak.FaultDuplicate}, d: 8 * time.Second, why: "the application's leak", names: "held by process"},
}

// zooRow is one line of the table.
type zooRow struct {
	name, shape, seen, check, after, evidence, heals, guard, leaktest string
}

// leakLine is how the soak's log names a leak as it sees it: "soak: LEAK
// (check): ..." or "soak: GROWTH: ...".
var leakLine = regexp.MustCompile(`^soak: (?:LEAK \(([^)]*)\)|(GROWTH)): `)

// verifyTimeout is the final checks' timeout of the zoo's soaks: the
// default in the 30-second runs, less in the short ones.
func verifyTimeout() time.Duration {
	if os.Getenv("LEAKPROOF_ZOO") != "" {
		return soak.DefaultVerifyTimeout
	}
	return 3 * time.Second
}

// soakZoo runs one soak, recording when the first leak was logged and by
// which check.
func soakZoo(t *testing.T, policy string, app *leakzoo.App, faults []soak.Fault, d time.Duration) (*soak.Result, time.Duration, string) {
	t.Helper()
	if app == nil {
		app = &leakzoo.App{}
	} else {
		defer app.Release()
	}
	var mu sync.Mutex
	var first time.Duration
	var firstCheck string
	start := time.Now()
	res, err := soak.Run(context.Background(), soak.Config{
		Policy: policy, Faults: faults, Duration: d,
		Load: app.Load, DialOptions: app.DialOptions, Dialer: app.Dialer,
		// A leak that outlives the channels keeps the final checks
		// waiting for their whole timeout: the short runs wait less.
		VerifyTimeout: verifyTimeout(),
		Logf: func(format string, args ...any) {
			line := fmt.Sprintf(format, args...)
			mu.Lock()
			defer mu.Unlock()
			if m := leakLine.FindStringSubmatch(line); m != nil && first == 0 {
				first, firstCheck = time.Since(start), m[1]
				if m[2] != "" {
					firstCheck = soak.CheckGrowth
				}
			}
		},
	})
	if err != nil {
		t.Fatalf("soak of %s did not run: %v", policy, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res, first, firstCheck
}

func TestLeakZooFailsTheSoakAndPassesUnderTheGuard(t *testing.T) {
	full := os.Getenv("LEAKPROOF_ZOO") != ""
	if *updateZoo && !full {
		t.Fatal("-zoo.update needs LEAKPROOF_ZOO=1: the table is the 30-second soaks'")
	}
	var rows []zooRow
	for _, e := range leakzoo.Entries() {
		tc, ok := zooCases[e.Name]
		if !ok {
			t.Errorf("zoo entry %s has no case here", e.Name)
			continue
		}
		faults, d := tc.faults, cmp.Or(tc.d, 4500*time.Millisecond)
		if full {
			faults, d = nil, soak.DefaultDuration
		}
		t.Run(e.Name, func(t *testing.T) {
			row := zooRow{name: e.Name, shape: e.Shape, seen: e.Seen, leaktest: "does not apply"}
			if e.Leaktest != nil {
				row.leaktest = leaktestZoo(t, e)
			}
			var app *leakzoo.App
			if e.App != nil {
				app = e.App()
			}
			res, after, firstCheck := soakZoo(t, e.Policy, app, faults, d)
			var caught []soak.Check
			for _, c := range res.Checks {
				if !c.Pass && !c.Info && slices.Contains(leakChecks, c.Name) {
					caught = append(caught, c)
				}
			}
			if len(caught) == 0 {
				t.Fatalf("%s (%s) passed every leak check:\n%s", e.Name, e.Shape, text(res))
			}
			// The check that saw the leak first (the first of the verdict
			// if none logged it during the run), and its evidence names
			// what leaked: a backend or the goroutines' creator.
			c := caught[0]
			for _, f := range caught {
				if f.Name == firstCheck {
					c = f
				}
			}
			named := strings.Contains(c.Detail, "backend b") || strings.Contains(c.Detail, "created by")
			if !named {
				t.Errorf("%s: %q does not name the backend or the owner: %s", e.Name, c.Name, c.Detail)
			}
			if tc.names != "" && !strings.Contains(c.Detail, tc.names) {
				t.Errorf("%s: %q does not say %q: %s", e.Name, c.Name, tc.names, c.Detail)
			}
			row.check, row.evidence = c.Name, evidenceLine(c.Detail)
			if after > 0 {
				row.after = fmt.Sprintf("%.1fs", after.Seconds())
			} else {
				row.after = "at the end"
			}
			row.heals = heals(res)
			t.Logf("%s: caught by %q after %s: %s; %s", e.Name, c.Name, row.after, row.evidence, row.heals)
			if e.PolicySide() && !tc.guarded {
				row.guard = "fails: " + tc.why
			}
			if !e.PolicySide() {
				row.guard = "not the guard's: " + tc.why
			}
			if tc.drained {
				row.guard += "; " + drainBound(t, e, faults, d)
			}
			if row.guard != "" || (!full && !tc.guardShort) {
				row.guard = cmp.Or(row.guard, "not run in the short test")
				rows = append(rows, row)
				return
			}
			guarded, _, _ := soakZoo(t, "leakproof_guard:"+e.Name, nil, faults, d)
			// The guard contains a forgotten subchannel: no extra
			// subchannel or socket while the channel lives. A child that
			// forgets SubConns of listed backends still holds their
			// references (the guard reclaims only what the resolver no
			// longer lists), and the trace says so: holder_leak, and
			// nothing else.
			held := 0
			for _, c := range guarded.Checks {
				if c.Pass || c.Info || !slices.Contains(leakChecks, c.Name) {
					continue
				}
				if c.Name == soak.CheckTrace && onlyHolderLeaks(guarded.Trace) {
					held = len(guarded.Trace.Problems)
					continue
				}
				t.Errorf("under leakproof_guard %s failed %q: %s", e.Name, c.Name, c.Detail)
			}
			row.guard = "passes"
			if held > 0 {
				row.guard = fmt.Sprintf("contained (no extra subchannel or socket); the trace names %d reference(s) the child never released (holder_leak)", held)
			}
			rows = append(rows, row)
		})
	}
	if t.Failed() || !full {
		checkZooTable(t, rows, false)
		return
	}
	if *updateZoo {
		writeZooTable(t, rows)
	}
	checkZooTable(t, rows, true)
}

// drainBound soaks an application's leak of sockets to removed backends
// under leakproof_round_robin, whose drainTimeout closes a removed
// subchannel's sockets however many streams they carry: the removal and
// subchannel checks must pass there.
func drainBound(t *testing.T, e leakzoo.Entry, faults []soak.Fault, d time.Duration) string {
	t.Helper()
	res, _, _ := soakZoo(t, roundrobin.Name, e.App(), faults, d)
	for _, c := range res.Checks {
		if (c.Name == soak.CheckRemovals || c.Name == soak.CheckSubchannels) && !c.Pass {
			t.Errorf("under %s, whose drain bound closes a removed backend's sockets, %s failed %q: %s", roundrobin.Name, e.Name, c.Name, c.Detail)
			return fmt.Sprintf("under %s %s fails", roundrobin.Name, c.Name)
		}
	}
	var still []string
	for _, c := range res.Checks {
		if !c.Pass && !c.Info && slices.Contains(leakChecks, c.Name) {
			still = append(still, c.Name)
		}
	}
	line := fmt.Sprintf("under %s the drain bound releases the removed backends (%s and %s pass)", roundrobin.Name, soak.CheckRemovals, soak.CheckSubchannels)
	if len(still) > 0 {
		line += "; the streams themselves still fail " + strings.Join(still, ", ")
	}
	t.Logf("%s: %s", e.Name, line)
	return line
}

// heals says whether the final checks (goroutines, descriptors, sockets
// back at the baseline) pass: where they do, only the checks made during
// the run saw the leak.
func heals(res *soak.Result) string {
	var failed []string
	for _, c := range res.Checks {
		if !c.Pass && (c.Name == soak.CheckGoroutines || c.Name == soak.CheckFDs || c.Name == soak.CheckSockets) {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) == 0 {
		return "the final checks pass"
	}
	return "the final checks fail: " + strings.Join(failed, ", ")
}

// leaktestZoo makes the entry's leak against a backend of its own between
// a leaktest baseline and leaktest.Find, and checks that Find names it: the
// forgotten channel's target, or the process holding a connection to the
// backend. It returns the evidence line for the table.
func leaktestZoo(t *testing.T, e leakzoo.Entry) string {
	t.Helper()
	b, err := testbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	release, err := e.Leaktest(ctx, b.Addr())
	if err != nil {
		t.Fatalf("%s: %v", e.Name, err)
	}
	start := time.Now()
	leaks := leaktest.Find(base, leaktest.Backends(b.Addr()), leaktest.Deadline(time.Second))
	took := time.Since(start)
	release()
	if leaks.Clean() {
		t.Fatalf("leaktest found nothing after %s", e.Name)
	}
	var named []string
	for _, c := range leaks.Channels {
		if strings.Contains(c.Target, b.Addr()) {
			named = append(named, c.String())
		}
	}
	for _, bs := range leaks.Backends {
		for _, h := range bs.Elsewhere {
			named = append(named, fmt.Sprintf("%d socket(s) to backend %v, want %d: %v", bs.Now, bs.Backend, bs.Baseline, h))
		}
	}
	if len(named) == 0 {
		t.Fatalf("leaktest did not name %s's channel or the process holding its socket:\n%v", e.Name, leaks)
	}
	t.Logf("%s: leaktest after %v: %s", e.Name, took.Round(time.Millisecond), named[0])
	if after := leaktest.Find(base, leaktest.Backends(b.Addr())); !after.Clean() {
		t.Errorf("%s's release left something behind:\n%v", e.Name, after)
	}
	return "fails, naming " + evidenceLine(named[0])
}

// evidenceLine shortens a check's detail to its first leak, on one line.
func evidenceLine(detail string) string {
	s := strings.SplitN(detail, "; ", 2)[0]
	if _, grown, ok := strings.Cut(detail, "; grown since the start: "); ok {
		s = strings.SplitN(s, ":", 2)[0] + "; grown: " + strings.SplitN(grown, "; ", 2)[0]
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 220 {
		s = s[:217] + "..."
	}
	return strings.ReplaceAll(s, "|", "/")
}

const (
	zooFile  = "../RELIABILITY.md"
	zooBegin = "<!-- leak zoo: begin (generated by LEAKPROOF_ZOO=1 go test ./soak -run TestLeakZoo -zoo.update) -->"
	zooEnd   = "<!-- leak zoo: end -->"
)

// zooTable renders the table: a row per entry, from this run's rows, or,
// for an entry this run did not soak (-run narrowed to some entries), the
// row the table had.
func zooTable(rows []zooRow, old string) string {
	kept := map[string]string{}
	for _, line := range strings.Split(old, "\n") {
		if _, rest, ok := strings.Cut(line, " (`"); ok {
			if name, _, ok := strings.Cut(rest, "`)"); ok {
				kept[name] = line
			}
		}
	}
	ran := map[string]zooRow{}
	for _, r := range rows {
		ran[r.name] = r
	}
	var b strings.Builder
	b.WriteString(zooBegin + "\n")
	b.WriteString("| shape (entry in internal/testing/leakzoo) | seen in | soak: check that caught it | first leak logged | evidence | at shutdown | under leakproof_guard | leaktest |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, e := range leakzoo.Entries() {
		if r, ok := ran[e.Name]; ok {
			fmt.Fprintf(&b, "| %s (`%s`) | %s | %s | %s | %s | %s | %s | %s |\n", r.shape, r.name, r.seen, r.check, r.after, r.evidence, r.heals, r.guard, r.leaktest)
		} else if line, ok := kept[e.Name]; ok {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString(zooEnd + "\n")
	return b.String()
}

func readZooTable(t *testing.T) (string, string, string) {
	t.Helper()
	data, err := os.ReadFile(zooFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, zooBegin), strings.Index(s, zooEnd)
	if i < 0 || j < i {
		return s, "", ""
	}
	return s[:i], s[i : j+len(zooEnd)+1], s[j+len(zooEnd)+1:]
}

func writeZooTable(t *testing.T, rows []zooRow) {
	before, table, after := readZooTable(t)
	if table == "" {
		before, after = before+"\n", ""
	}
	if err := os.WriteFile(zooFile, []byte(before+zooTable(rows, table)+after), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkZooTable checks that RELIABILITY.md has a row for every entry, and,
// after a full run, that each row names the check that caught it now.
func checkZooTable(t *testing.T, rows []zooRow, checks bool) {
	t.Helper()
	_, table, _ := readZooTable(t)
	if table == "" {
		t.Errorf("%s has no leak zoo table: run LEAKPROOF_ZOO=1 go test ./soak -run TestLeakZoo -zoo.update", zooFile)
		return
	}
	for _, e := range leakzoo.Entries() {
		if !strings.Contains(table, "(`"+e.Name+"`)") {
			t.Errorf("%s's zoo table has no row for %s", zooFile, e.Name)
		}
	}
	if !checks {
		return
	}
	for _, r := range rows {
		if !strings.Contains(table, "(`"+r.name+"`) | "+r.seen+" | "+r.check+" |") {
			t.Errorf("%s's zoo table does not say %s is caught by %q, as this run saw: rerun with -zoo.update", zooFile, r.name, r.check)
		}
	}
}

// onlyHolderLeaks reports whether every problem of the trace is a
// reference a holder never released.
func onlyHolderLeaks(rep trace.Report) bool {
	for _, p := range rep.Problems {
		if p.Kind != trace.ProblemHolderLeak {
			return false
		}
	}
	return len(rep.Problems) > 0 && rep.Live == 0
}
