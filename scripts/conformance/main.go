// Command conformance runs grpc-go's own tests twice, on grpc's policies
// (the baseline) and with leakproof's policies registered under grpc's names
// (pickfirst.ReplaceGRPCPolicy, roundrobin.ReplaceGRPCPolicy), and prints
// pass/fail per package.
//
// It copies the grpc module at the version in go.mod from the module cache
// into a temporary directory, joins it and this module in a go.work, and adds
// to each package one external test file that substitutes the policies only
// when LEAKPROOF_CONFORMANCE=substitute, so one test binary runs both. In
// substituted runs the test file checks which package registered
// "pick_first" and "round_robin" and logs how many subconn managers each
// test built; a package whose substituted run builds none fails the run.
//
// Usage (from the repository root; scripts/conformance.sh wraps it):
//
//	go run ./scripts/conformance [-quick] [-pkg list] [-keep] [-v]
//
// The exit status is non-zero if a test that passes on the baseline fails
// substituted and is not in allowlist.txt. A test that fails substituted only
// is first run again -rerun times in each mode: if it then passes every
// substituted rerun it is reported as flaky and does not fail the run (grpc's
// own tests have timing flakes that strike either mode under load); if it
// fails any rerun it counts. -rerun 0 counts every first failure.
package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	//go:embed substitute.go.tmpl
	substituteTmpl string
	//go:embed grpc_default_sc.go.tmpl
	defaultSCTmpl string
	//go:embed grpctest_hook.go.tmpl
	grpctestHookTmpl string
	//go:embed allowlist.txt
	allowlistText string
)

// target is one grpc package and, in quick mode, the tests to run in it.
type target struct {
	dir string // relative to the grpc module root
	run string // -run pattern; "" runs all
	// noChannels: the package's tests build no pick_first or round_robin
	// balancer (only configs), so no manager is expected.
	noChannels bool
}

// full is every package the conformance run covers: the policies that build
// pick_first or round_robin children, the xDS policies above them, and the
// end-to-end tests of channels (root package and test/).
var full = []target{
	{dir: "."},
	{dir: "test"},
	{dir: "balancer/pickfirst"},
	{dir: "balancer/ringhash"},
	{dir: "balancer/weightedroundrobin"},
	{dir: "balancer/weightedtarget"},
	{dir: "balancer/endpointsharding"},
	{dir: "balancer/leastrequest"},
	{dir: "balancer/lazy"},
	{dir: "internal/balancergroup"},
	{dir: "internal/xds/balancer/priority"},
	{dir: "internal/xds/balancer/wrrlocality", noChannels: true},
	{dir: "internal/xds/balancer/cdsbalancer"},
	{dir: "internal/xds/balancer/clustermanager"},
	{dir: "internal/xds/balancer/clusterimpl"},
	{dir: "internal/xds/balancer/outlierdetection"},
	{dir: "stats/opentelemetry"},
}

// quick is the CI subset: every policy package in full, and the tests of the
// root package and test/ that exercise pick_first and round_robin.
var quick = []target{
	{dir: ".", run: `^Test$/^(Parse|ResolverBalancer|ClientConn|Dial|BalancerProducer|Resolver)`},
	{dir: "test", run: `^Test$/^(RoundRobin|PickFirst|Balancer|StateTransitions|Health|GoAway|ConfigSelector|ServiceConfig|ResolverUpdate|Channelz|RPCBlockingOnPickerStatsCall)`},
	{dir: "balancer/pickfirst"},
	{dir: "balancer/ringhash"},
	{dir: "balancer/weightedroundrobin"},
	{dir: "balancer/weightedtarget"},
	{dir: "balancer/endpointsharding"},
	{dir: "balancer/leastrequest"},
	{dir: "balancer/lazy"},
	{dir: "internal/balancergroup"},
	{dir: "internal/xds/balancer/priority"},
	{dir: "internal/xds/balancer/wrrlocality", noChannels: true},
	{dir: "internal/xds/balancer/cdsbalancer"},
	{dir: "internal/xds/balancer/clustermanager"},
	{dir: "internal/xds/balancer/clusterimpl"},
	{dir: "internal/xds/balancer/outlierdetection"},
	{dir: "stats/opentelemetry", run: `^Test$/^(WRR|RLS|PickFirst|Metrics|Traces)`},
}

func main() {
	quickMode := flag.Bool("quick", false, "run the CI subset (see quick in main.go)")
	pkgs := flag.String("pkg", "", "comma-separated package dirs to run (relative to the grpc module), default all of the mode")
	keep := flag.Bool("keep", false, "keep the temporary grpc copy and the logs")
	verbose := flag.Bool("v", false, "print every test that fails in either mode, with its output")
	timeout := flag.Duration("timeout", 30*time.Minute, "go test -timeout per package and mode")
	reruns := flag.Int("rerun", 5, "how many times a test that fails substituted only runs again in each mode before it counts (0: no reruns)")
	flag.Parse()
	if err := run(*quickMode, *pkgs, *keep, *verbose, *timeout, *reruns); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run(quickMode bool, pkgList string, keep, verbose bool, timeout time.Duration, reruns int) error {
	start := time.Now()
	root, err := output("", "go", "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return err
	}
	if _, err := output(root, "go", "mod", "download", "google.golang.org/grpc"); err != nil {
		return err
	}
	mod, err := output(root, "go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", "google.golang.org/grpc")
	if err != nil {
		return err
	}
	version, grpcDir, _ := strings.Cut(mod, " ")
	allow, err := parseAllowlist(allowlistText)
	if err != nil {
		return err
	}

	targets := full
	if quickMode {
		targets = quick
	}
	if pkgList != "" {
		var sel []target
		for _, p := range strings.Split(pkgList, ",") {
			i := slices.IndexFunc(targets, func(t target) bool { return t.dir == p })
			if i < 0 {
				sel = append(sel, target{dir: p})
			} else {
				sel = append(sel, targets[i])
			}
		}
		targets = sel
	}

	tmp, err := os.MkdirTemp("", "leakproof-conformance-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(tmp)
	}
	work := filepath.Join(tmp, "grpc")
	fmt.Printf("grpc-go %s from %s\ncopy: %s\n", version, grpcDir, work)
	if err := copyTree(grpcDir, work); err != nil {
		return err
	}
	if err := prepare(root, work, targets); err != nil {
		return err
	}
	goWork := fmt.Sprintf("go %s\n\nuse (\n\t./grpc\n\t%s\n)\n", goVersion(root, work), root)
	if err := os.WriteFile(filepath.Join(tmp, "go.work"), []byte(goWork), 0o644); err != nil {
		return err
	}
	if _, err := output(work, "go", "mod", "download"); err != nil {
		return err
	}

	var results []pkgResult
	for _, tg := range targets {
		res := pkgResult{dir: tg.dir, noChannels: tg.noChannels}
		for _, mode := range []string{"baseline", "substitute"} {
			t0 := time.Now()
			mr, err := runTests(work, tg, mode, 1, timeout, filepath.Join(tmp, strings.ReplaceAll(tg.dir, "/", "_")+"."+mode+".json"))
			if err != nil {
				return fmt.Errorf("%s (%s): %w", tg.dir, mode, err)
			}
			mr.took = time.Since(t0)
			if mode == "baseline" {
				res.base = mr
			} else {
				res.sub = mr
			}
		}
		if err := res.rerun(work, tg, allow, reruns, timeout, tmp); err != nil {
			return fmt.Errorf("%s (rerun): %w", tg.dir, err)
		}
		res.report(allow, verbose)
		results = append(results, res)
	}
	return summarize(results, allow, time.Since(start), tmp, keep)
}

// prepare adds the hooks and one substitute test file per package.
func prepare(root, work string, targets []target) error {
	if err := os.WriteFile(filepath.Join(work, "leakproof_conformance.go"), []byte(defaultSCTmpl), 0o644); err != nil {
		return err
	}
	hook := filepath.Join(work, "internal", "grpctest")
	if err := os.WriteFile(filepath.Join(hook, "leakproof_conformance.go"), []byte(grpctestHookTmpl), 0o644); err != nil {
		return err
	}
	gt := filepath.Join(hook, "grpctest.go")
	src, err := os.ReadFile(gt)
	if err != nil {
		return err
	}
	const anchor = "\t\t\tx.Setup(t)\n"
	if bytes.Count(src, []byte(anchor)) != 1 {
		return fmt.Errorf("%s: cannot find RunSubTests' Setup call to hook", gt)
	}
	src = bytes.Replace(src, []byte(anchor), []byte("\t\t\tif LeakproofTestHook != nil {\n\t\t\t\tLeakproofTestHook(t)\n\t\t\t}\n"+anchor), 1)
	if err := os.WriteFile(gt, src, 0o644); err != nil {
		return err
	}
	for _, tg := range targets {
		dir := filepath.Join(work, tg.dir)
		name, err := packageName(dir)
		if err != nil {
			return err
		}
		file := strings.Replace(substituteTmpl, "{{PKG}}", name+"_test", 1)
		if err := os.WriteFile(filepath.Join(dir, "leakproof_conformance_ext_test.go"), []byte(file), 0o644); err != nil {
			return err
		}
	}
	return nil
}

var pkgClause = regexp.MustCompile(`(?m)^package ([A-Za-z_][A-Za-z0-9_]*)`)

// packageName returns the name of the package in dir (from its non-test
// files, or its internal test files if it has only tests).
func packageName(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	slices.SortFunc(files, func(a, b string) int {
		return boolInt(strings.HasSuffix(a, "_test.go")) - boolInt(strings.HasSuffix(b, "_test.go"))
	})
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if m := pkgClause.FindSubmatch(src); m != nil && !strings.HasSuffix(string(m[1]), "_test") {
			return string(m[1]), nil
		}
	}
	return "", fmt.Errorf("%s: no Go package", dir)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// goVersion returns the higher go directive of the two modules.
func goVersion(dirs ...string) string {
	best := "1.21"
	for _, d := range dirs {
		src, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err != nil {
			continue
		}
		if m := regexp.MustCompile(`(?m)^go ([0-9.]+)`).FindSubmatch(src); m != nil && versionLess(best, string(m[1])) {
			best = string(m[1])
		}
	}
	return best
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// modeResult is one go test run of one package.
type modeResult struct {
	pass, fail, skip map[string]bool
	passes, fails    map[string]int // how many times each unit passed and failed (-count > 1)
	managers         map[string]int
	output           map[string]*strings.Builder
	banner           string // the substitute's registration lines
	buildFailed      string
	took             time.Duration
}

type pkgResult struct {
	dir        string
	noChannels bool
	base, sub  modeResult
	reruns     map[string]rerunResult // the units that failed substituted only, run again
}

// rerunResult is how a unit that failed substituted only did when run again
// in each mode.
type rerunResult struct {
	basePass, baseRuns, subPass, subRuns int
}

// flaky reports whether the unit passed every substituted rerun.
func (rr rerunResult) flaky() bool { return rr.subRuns > 0 && rr.subPass == rr.subRuns }

func (rr rerunResult) String() string {
	return fmt.Sprintf("reruns: substituted %d/%d passed, baseline %d/%d", rr.subPass, rr.subRuns, rr.basePass, rr.baseRuns)
}

// runTests runs go test -json for one package in one mode and collects the
// results of grpc's test units: "Test/X" for grpctest's RunSubTests methods,
// the top-level name otherwise.
func runTests(work string, tg target, mode string, count int, timeout time.Duration, logPath string) (modeResult, error) {
	args := []string{"test", "-json", "-count=" + strconv.Itoa(count), "-timeout", timeout.String()}
	if tg.run != "" {
		args = append(args, "-run", tg.run)
	}
	args = append(args, "./"+tg.dir)
	cmd := exec.Command("go", args...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "LEAKPROOF_CONFORMANCE="+mode)
	logf, err := os.Create(logPath)
	if err != nil {
		return modeResult{}, err
	}
	defer logf.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return modeResult{}, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return modeResult{}, err
	}
	mr := modeResult{
		pass: map[string]bool{}, fail: map[string]bool{}, skip: map[string]bool{},
		passes: map[string]int{}, fails: map[string]int{},
		managers: map[string]int{}, output: map[string]*strings.Builder{},
	}
	managersRE := regexp.MustCompile(`leakproof-conformance: managers=(\d+)`)
	sc := bufio.NewScanner(io.TeeReader(stdout, logf))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var pkgOutput strings.Builder
	var last, panicking string // the unit last started; the unit that panicked
	for sc.Scan() {
		var ev struct {
			Action, Test, Output string
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		unit := unitOf(ev.Test)
		switch ev.Action {
		case "output":
			if ev.Test == "Test" && last != "" && strings.HasPrefix(ev.Output, "panic: ") {
				panicking = last // a panic in a unit is printed under its parent
			}
			if ev.Test == "Test" && panicking != "" {
				unit = panicking
			} else if ev.Test == "" {
				pkgOutput.WriteString(ev.Output)
				if strings.Contains(ev.Output, "leakproof-conformance: ") && strings.Contains(ev.Output, " is ") {
					mr.banner += ev.Output
				}
				continue
			}
			if strings.HasPrefix(ev.Output, "=== RUN") && unit != "Test" {
				last = unit
			}
			if m := managersRE.FindStringSubmatch(ev.Output); m != nil && unit == ev.Test {
				n, _ := strconv.Atoi(m[1])
				mr.managers[unit] += n
			}
			b := mr.output[unit]
			if b == nil {
				b = &strings.Builder{}
				mr.output[unit] = b
			}
			if b.Len() < 64<<10 {
				b.WriteString(ev.Output)
			}
		case "pass", "fail", "skip":
			if ev.Test == "" || unit != ev.Test {
				continue
			}
			if ev.Test == "Test" {
				continue // grpctest's parent of the units
			}
			map[string]map[string]bool{"pass": mr.pass, "fail": mr.fail, "skip": mr.skip}[ev.Action][unit] = true
			switch ev.Action {
			case "pass":
				mr.passes[unit]++
			case "fail":
				mr.fails[unit]++
			}
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return mr, err
	}
	if len(mr.pass)+len(mr.fail)+len(mr.skip) == 0 && err != nil {
		mr.buildFailed = stderr.String() + pkgOutput.String()
	}
	// A package-level failure (a panic, a timeout) fails every unit that had
	// started but not finished.
	for unit := range mr.output {
		if !mr.pass[unit] && !mr.fail[unit] && !mr.skip[unit] && unit != "Test" {
			mr.fail[unit] = true
			mr.fails[unit]++
			mr.output[unit].WriteString(tail(pkgOutput.String(), 4000))
		}
	}
	return mr, nil
}

// unitOf maps a test name to its unit: "Test/X/y" -> "Test/X", "TestFoo/y"
// -> "TestFoo".
func unitOf(name string) string {
	parts := strings.SplitN(name, "/", 3)
	if parts[0] == "Test" && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// allowed is one allowlist entry: a test that cannot pass substituted for a
// reason outside leakproof.
type allowed struct{ pkg, test, reason string }

// parseAllowlist reads "pkg test reason..." lines; # starts a comment line.
func parseAllowlist(text string) (map[string]allowed, error) {
	out := map[string]allowed{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("allowlist.txt:%d: want \"pkg test reason\", got %q", i+1, line)
		}
		out[f[0]+" "+f[1]] = allowed{pkg: f[0], test: f[1], reason: strings.Join(f[2:], " ")}
	}
	return out, nil
}

// regressions sorts the units that pass on the baseline and fail
// substituted: allowlisted, flaky (passed every substituted rerun), or
// regressions, which fail the run.
func (r *pkgResult) regressions(allow map[string]allowed) (reg, allowedFails, flaky []string) {
	for unit := range r.base.pass {
		if r.sub.pass[unit] || r.sub.skip[unit] {
			continue
		}
		if _, ok := allow[r.dir+" "+unit]; ok {
			allowedFails = append(allowedFails, unit)
		} else if rr, ok := r.reruns[unit]; ok && rr.flaky() {
			flaky = append(flaky, unit)
		} else {
			reg = append(reg, unit)
		}
	}
	slices.Sort(reg)
	slices.Sort(allowedFails)
	slices.Sort(flaky)
	return reg, allowedFails, flaky
}

// rerun runs every unit that failed substituted only n more times in each
// mode (one go test -count=n per mode) and records how often it passed.
func (r *pkgResult) rerun(work string, tg target, allow map[string]allowed, n int, timeout time.Duration, logDir string) error {
	if n <= 0 {
		return nil
	}
	reg, _, _ := r.regressions(allow)
	for _, u := range reg {
		t := target{dir: tg.dir, run: runPattern(u)}
		var rr rerunResult
		for _, mode := range []string{"baseline", "substitute"} {
			log := filepath.Join(logDir, strings.NewReplacer("/", "_", " ", "_").Replace(tg.dir+"."+u)+".rerun."+mode+".json")
			mr, err := runTests(work, t, mode, n, timeout, log)
			if err != nil {
				return err
			}
			if mode == "baseline" {
				rr.basePass, rr.baseRuns = mr.passes[u], mr.passes[u]+mr.fails[u]
			} else {
				rr.subPass, rr.subRuns = mr.passes[u], mr.passes[u]+mr.fails[u]
				if !rr.flaky() {
					r.sub.output[u] = appendOutput(r.sub.output[u], "\n--- a failing rerun:\n", firstFailure(mr, u))
				}
			}
		}
		if r.reruns == nil {
			r.reruns = map[string]rerunResult{}
		}
		r.reruns[u] = rr
	}
	return nil
}

// runPattern is the go test -run pattern that selects exactly unit u.
func runPattern(u string) string {
	top, sub, ok := strings.Cut(u, "/")
	if !ok {
		return "^" + regexp.QuoteMeta(top) + "$"
	}
	return "^" + regexp.QuoteMeta(top) + "$/^" + regexp.QuoteMeta(sub) + "$"
}

// firstFailure returns the output unit u printed in a -count run, up to the
// end of its first failure.
func firstFailure(m modeResult, u string) string {
	out := m.out(u)
	if i := strings.Index(out, "--- FAIL"); i >= 0 {
		if j := strings.Index(out[i:], "\n=== RUN"); j >= 0 {
			return out[:i+j]
		}
	}
	return out
}

func appendOutput(b *strings.Builder, parts ...string) *strings.Builder {
	if b == nil {
		b = &strings.Builder{}
	}
	for _, p := range parts {
		b.WriteString(p)
	}
	return b
}

// totals returns how many units ran in each mode; a unit the baseline ran
// that the substituted run never reached (a panic, a timeout) counts as run
// and failed.
func (r *pkgResult) totals() (base, sub int) {
	base = len(r.base.pass) + len(r.base.fail)
	sub = len(r.sub.pass) + len(r.sub.fail)
	for _, m := range []map[string]bool{r.base.pass, r.base.fail} {
		for u := range m {
			if !r.sub.pass[u] && !r.sub.fail[u] && !r.sub.skip[u] {
				sub++
			}
		}
	}
	return base, sub
}

func (r *pkgResult) managersTotal() (total, tests int) {
	for _, n := range r.sub.managers {
		total += n
		if n > 0 {
			tests++
		}
	}
	return total, tests
}

func (r *pkgResult) report(allow map[string]allowed, verbose bool) {
	bt, st := r.totals()
	mgr, withMgr := r.managersTotal()
	fmt.Printf("%-42s baseline %4d/%-4d substituted %4d/%-4d managers %5d in %3d tests  (%v + %v)\n",
		r.dir, len(r.base.pass), bt, len(r.sub.pass), st, mgr, withMgr,
		r.base.took.Round(time.Second), r.sub.took.Round(time.Second))
	if r.base.buildFailed != "" || r.sub.buildFailed != "" {
		fmt.Printf("    BUILD FAILED:\n%s%s\n", indent(r.base.buildFailed), indent(r.sub.buildFailed))
	}
	reg, al, flaky := r.regressions(allow)
	for _, u := range reg {
		if rr, ok := r.reruns[u]; ok {
			fmt.Printf("    FAIL substituted (passes on baseline): %s (%s; %v)\n", u, verdict(r.sub, u), rr)
		} else {
			fmt.Printf("    FAIL substituted (passes on baseline): %s (%s)\n", u, verdict(r.sub, u))
		}
		if verbose {
			fmt.Print(indent(tail(r.sub.out(u), 6000)))
		}
	}
	for _, u := range flaky {
		fmt.Printf("    flaky, not counted: %s failed substituted once (%s), then passed every rerun (%v); its first failure:\n", u, verdict(r.sub, u), r.reruns[u])
		fmt.Print(indent(tail(r.sub.out(u), 3000)))
	}
	for _, u := range al {
		fmt.Printf("    allowlisted: %s — %s\n", u, allow[r.dir+" "+u].reason)
	}
	for u := range r.base.fail {
		fmt.Printf("    note: fails on the baseline too: %s (substituted: %s)\n", u, verdict(r.sub, u))
		if verbose {
			fmt.Print(indent(tail(r.base.out(u), 3000)))
		}
	}
}

// out returns the output of unit u ("" if it never ran).
func (m modeResult) out(u string) string {
	if b := m.output[u]; b != nil {
		return b.String()
	}
	return ""
}

func verdict(m modeResult, u string) string {
	switch {
	case m.pass[u]:
		return "pass"
	case m.fail[u]:
		return "fail"
	case m.skip[u]:
		return "skip"
	}
	return "not run"
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("      ")
			b.WriteString(l)
		}
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteByte('\n')
	}
	return b.String()
}

func summarize(results []pkgResult, allow map[string]allowed, took time.Duration, tmp string, keep bool) error {
	var basePass, baseTotal, subPass, subTotal, regs, allowedN, flakyN int
	var problems []string
	for _, r := range results {
		bt, st := r.totals()
		basePass += len(r.base.pass)
		baseTotal += bt
		subPass += len(r.sub.pass)
		subTotal += st
		reg, al, fl := r.regressions(allow)
		regs += len(reg)
		allowedN += len(al)
		flakyN += len(fl)
		switch {
		case r.base.buildFailed != "" || r.sub.buildFailed != "":
			problems = append(problems, r.dir+": build failed")
		case !strings.Contains(r.sub.banner, "pick_first is github.com/leakproof/leakproof/balancer/pickfirst"):
			problems = append(problems, r.dir+": the substituted run did not report leakproof's pick_first")
		}
		if mgr, _ := r.managersTotal(); mgr == 0 && !r.noChannels {
			problems = append(problems, r.dir+": the substituted run built no leakproof manager")
		}
	}
	fmt.Printf("\nTOTAL baseline %d/%d, substituted %d/%d; %d fail substituted only (%d allowlisted, %d flaky: passed every rerun); %v\n",
		basePass, baseTotal, subPass, subTotal, regs+allowedN+flakyN, allowedN, flakyN, took.Round(time.Second))
	if keep {
		fmt.Printf("logs and the grpc copy: %s\n", tmp)
	}
	if regs > 0 {
		problems = append(problems, fmt.Sprintf("%d test(s) pass on grpc's policies and fail on leakproof's", regs))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// output runs a command and returns its trimmed stdout.
func output(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// copyTree copies the module cache's read-only tree to a writable one.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
