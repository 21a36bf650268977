package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leakproof/leakproof/soak"
)

const soakUsage = `usage: leakproof soak [flags]

Starts gRPC backends on 127.0.0.1 and a client with the policy under test,
runs RPCs (unary, server-streaming and bidirectional, with retries) while
injecting faults on a timeline, then closes everything and checks that every
subchannel, socket and goroutine was released. Needs Linux (/proc).

During the run it checks that sockets to a backend the resolver removed reach
0 within the drain timeout plus slack while the channel stays open, that
the leakproof policies hold at most one socket per backend outside GOAWAY and
removal drain windows, that every descriptor's owner (the channels, each
backend, the rest) explains it, and that nothing grows: no owner's
descriptors across repeats of a phase and, once 5 minutes of samples after warm-up exist, no
least-squares slope of goroutines, descriptors, heap or manager records. At
the end: RPC failure rate, goroutines, descriptors and sockets back at the
baseline, and a clean refcount trace.

--resolver manual (the default) gives each channel a manual resolver that
the faults update. --resolver xds (--xds is the same) runs the channels
under an embedded xDS control plane (a
go-control-plane ADS server on 127.0.0.1): they dial xds:///…, the control
plane selects the policy per cluster through a TypedStruct (grpc's round_robin
is grpc's own xDS round robin), the faults that change the resolved list
arrive as xDS pushes (a resolver error is an EDS update the client NACKs), and
the control plane's own faults run too (xds-*, listed below). --resolver dns
resolves through grpc's dns resolver and a DNS server on 127.0.0.1: the
channels dial dns://127.0.0.1:PORT/NAME:PORT, the backends listen on one port
at 127.0.0.2, 127.0.0.3, …, and the resolver faults become DNS answers
(changed and duplicate records, empty answers and NXDOMAIN, SERVFAIL and
unanswered queries, slow answers, truncated UDP answers and a _grpc_config
TXT record); overlap is skipped (DNS cannot express an endpoint of several
addresses). grpc's dns resolver asks DNS again only when the policy or a lost
connection asks it to, at most once per minimum interval, which the run
lowers to 1s for the process. A removal counts from the first DNS answer
without the backend; one the channel never learned is reported as such
(cure: the leakproof policies' reresolveInterval, or MaxConnectionAge).

--service-config gives the channels under test a service config of their
own (JSON, or @file holding it): any registered policy with its parameters.
It overrides --policy; the policy it selects decides the socket limit, and
its drainTimeout (the guard's orphanTimeout, if longer) the removal bound
unless --drain-timeout is given. --tls makes every backend serve TLS with a
certificate from a CA generated for the run, which the channels trust.

Exit status: 0 clean verdict, 1 leak or failed run (reason on stderr),
2 bad flags.

examples:
  leakproof soak                                   30s, every fault, leakproof_round_robin
  leakproof soak --duration 1h --report soak.html  the long soak, with an HTML report
  leakproof soak --faults overlap,dup --compare round_robin
  leakproof soak --policy leakproof_guard:weighted_round_robin --compare weighted_round_robin
  leakproof soak --faults -tls,-churn --json > soak.json
  leakproof soak --resolver xds --compare round_robin   under an xDS control plane, beside grpc's xDS round robin
  leakproof soak --resolver dns --compare round_robin --service-config '{"loadBalancingConfig":[{"leakproof_round_robin":{"reresolveInterval":"1s"}}]}'
  leakproof soak --tls --service-config '{"loadBalancingConfig":[{"leakproof_guard":{"childPolicy":[{"weighted_round_robin":{}}],"drainTimeout":"1s","orphanTimeout":"500ms"}}]}'
  leakproof soak --trace t.jsonl && leakproof trace check t.jsonl

flags:
`

// soakProgressEvery is how often a progress line is printed when stderr is
// not a terminal.
const soakProgressEvery = 5 * time.Second

func soakMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("leakproof soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		duration   = fs.Duration("duration", soak.DefaultDuration, "length of the fault timeline, e.g. 15s or 1h (setup and final checks add a few seconds)")
		backends   = fs.Int("backends", soak.DefaultBackends, fmt.Sprintf("number of regular backends, %d to %d", soak.MinBackends, soak.MaxBackends))
		policy     = fs.String("policy", soak.DefaultPolicy, "load-balancing `policy` under test (see below)")
		compare    = fs.String("compare", "", "also run this `policy` side by side on the same backends (e.g. round_robin); reported, not part of the verdict")
		faults     = fs.String("faults", "all", "faults to run: comma-separated `names`; -name excludes (e.g. goaway,rst or -tls); see below")
		tracePath  = fs.String("trace", "", "write the refcount trace of the run's channels as JSON lines to `file`")
		reportPath = fs.String("report", "", "write a self-contained HTML report to `file`")
		jsonOut    = fs.Bool("json", false, "print the result as JSON on stdout instead of the verdict table")
		workers    = fs.Int("workers", soak.DefaultWorkers, "goroutines making unary RPCs")
		streams    = fs.Int("streams", soak.DefaultStreams, "goroutines opening streams")
		maxFail    = fs.Float64("max-failure-rate", soak.DefaultMaxFailureRate, "largest `fraction` of RPCs allowed to fail after retries (0.01 is 1%)")
		drain      = fs.Duration("drain-timeout", soak.DefaultDrainTimeout, "drainTimeout given to the leakproof policies")
		quiet      = fs.Bool("quiet", false, "no progress and phase lines on stderr")
		xds        = fs.Bool("xds", false, "same as --resolver xds")
		weightedL  = fs.Bool("xds-weighted-localities", false, "with --resolver xds: two localities weighted 1:3, the policy as WrrLocality's endpoint-picking policy (one instance per locality)")
		resolverF  = fs.String("resolver", string(soak.ResolverManual), "`resolver` of the channels: manual, dns or xds (see below)")
		svcConfig  = fs.String("service-config", "", "service config of the channels under test, `JSON` or @file; overrides --policy")
		tlsF       = fs.Bool("tls", false, "every backend serves TLS from a CA made for the run, which the channels trust")
		heapDir    = fs.String("heap-profiles", "", "write heap profiles after warm-up and near the end to `dir` (see below)")
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, soakUsage)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n--policy: leakproof_round_robin, leakproof_pick_first, grpc's round_robin,\npick_first, or leakproof_guard:NAME, any registered policy under the guard:\n  %s\n", strings.Join(soak.GuardedGRPCPolicies, ", "))
		fmt.Fprintln(stderr, "\n--heap-profiles DIR: heap-warm.pb.gz and heap-end.pb.gz, one sample per 4 KiB\nallocated; go tool pprof -diff_base heap-warm.pb.gz heap-end.pb.gz attributes\na heap slope.")
		fmt.Fprintln(stderr, "\nfaults, in timeline order:")
		for _, f := range soak.AllFaults() {
			fmt.Fprintf(stderr, "  %-17s %s\n", f, f.Description())
		}
		fmt.Fprintln(stderr, "with --resolver xds, after those:")
		for _, f := range soak.XDSFaults()[len(soak.AllFaults()):] {
			fmt.Fprintf(stderr, "  %-17s %s\n", f, f.Description())
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "leakproof soak: "+format+"\n\n", a...)
		fs.Usage()
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	resolver := soak.Resolver(*resolverF)
	if *xds {
		if resolver != soak.ResolverManual && resolver != soak.ResolverXDS {
			return usageErr("--xds is --resolver xds, not --resolver %s", resolver)
		}
		resolver = soak.ResolverXDS
	}
	sc := *svcConfig
	if path, ok := strings.CutPrefix(sc, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return usageErr("--service-config: %v", err)
		}
		sc = string(b)
	}
	parseFaults := soak.ParseFaults
	if resolver == soak.ResolverXDS {
		parseFaults = soak.ParseXDSFaults
	}
	spec := *faults
	if *weightedL && !flagSet(fs, "faults") {
		spec = "-" + string(soak.FaultXDSLocalityDup) // one backend in two localities: two subchannels by design
	}
	selected, err := parseFaults(spec)
	if err != nil {
		return usageErr("--faults: %v", strings.TrimPrefix(err.Error(), "soak: "))
	}
	rate := *maxFail
	switch {
	case rate < 0 || rate > 1:
		return usageErr("--max-failure-rate %v must be between 0 and 1", rate)
	case rate == 0:
		rate = -1 // no failure allowed: Config's 0 means the default
	}
	for name, v := range map[string]int{"workers": *workers, "streams": *streams} {
		if v < 0 {
			return usageErr("--%s %d must not be negative", name, v)
		}
	}
	cfg := soak.Config{
		Duration:       *duration,
		Backends:       *backends,
		Policy:         *policy,
		Compare:        *compare,
		Faults:         selected,
		Workers:        *workers,
		Streams:        *streams,
		MaxFailureRate: rate,
		DrainTimeout:   *drain,
		Resolver:       resolver,
		ServiceConfig:  sc,
		TLS:            *tlsF,

		XDSWeightedLocalities: *weightedL,
	}
	if sc != "" && !flagSet(fs, "drain-timeout") {
		cfg.DrainTimeout = 0 // the service config's
	}
	if *workers == 0 && *streams == 0 {
		return usageErr("--workers and --streams are both 0: no load")
	}
	if *duration <= 0 || *drain <= 0 && cfg.DrainTimeout != 0 {
		return usageErr("--duration and --drain-timeout must be positive")
	}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", strings.TrimPrefix(err.Error(), "soak: "))
	}
	if *reportPath != "" {
		// Fail before a long run, not after it.
		if err := checkWritable(*reportPath); err != nil {
			return usageErr("--report: %v", err)
		}
	}
	var traceFile *os.File
	if *tracePath != "" {
		if traceFile, err = os.Create(*tracePath); err != nil {
			return usageErr("--trace: %v", err)
		}
		defer traceFile.Close()
		cfg.Trace = traceFile
	}

	var heap *heapProfiles
	if *heapDir != "" {
		if st, err := os.Stat(*heapDir); err != nil || !st.IsDir() {
			return usageErr("--heap-profiles %q: not a directory", *heapDir)
		}
		f, err := os.CreateTemp(*heapDir, ".leakproof-soak-*")
		if err != nil {
			return usageErr("--heap-profiles: %v", err)
		}
		f.Close()
		os.Remove(f.Name())
		heap = newHeapProfiles(*heapDir, *duration)
		cfg.OnSample = heap.sample
	}
	if !*quiet {
		p := newProgress(stderr, *duration)
		if heap != nil {
			cfg.OnSample = func(s soak.Sample) { heap.sample(s); p.sample(s) }
		} else {
			cfg.OnSample = p.sample
		}
		cfg.Logf = p.logf
		defer p.done()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := soak.Run(ctx, cfg)
	if cfg.Logf != nil {
		cfg.Logf("") // end the progress line
	}
	if heap != nil {
		wrote, err := heap.result()
		for _, p := range wrote {
			fmt.Fprintf(stderr, "leakproof soak: heap profile %s\n", p)
		}
		if err != nil {
			fmt.Fprintf(stderr, "leakproof soak: %v\n", err)
			runErr = errors.Join(runErr, err)
		}
	}
	if traceFile != nil {
		if err := traceFile.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("--trace: %w", err)
		}
	}
	if res == nil {
		fmt.Fprintf(stderr, "leakproof soak: %v\n", runErr)
		return 1
	}
	if *reportPath != "" {
		if err := writeReport(*reportPath, res); err != nil {
			fmt.Fprintf(stderr, "leakproof soak: --report: %v\n", err)
			runErr = errors.Join(runErr, err)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "leakproof soak: %v\n", err)
			return 1
		}
	} else if err := res.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "leakproof soak: %v\n", err)
		return 1
	}
	switch {
	case runErr != nil:
		fmt.Fprintf(stderr, "leakproof soak: %v\n%s\n", runErr, res.Verdict())
		return 1
	case !res.Pass:
		fmt.Fprintf(stderr, "leakproof soak: %s\n", res.Verdict())
		return 1
	}
	if *reportPath != "" && !*jsonOut {
		fmt.Fprintf(stdout, "\nreport: %s\n", *reportPath)
	}
	return 0
}

// flagSet reports whether the flag name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkWritable creates (or truncates) path, to find out early whether the
// report can be written there.
func checkWritable(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func writeReport(path string, res *soak.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteHTML(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progress shows how the run goes on w: on a terminal one line rewritten
// in place with \r; otherwise a plain line every soakProgressEvery, for CI
// logs. Phase starts and RPC failures are printed as lines either way.
type progress struct {
	w     io.Writer
	tty   bool
	total time.Duration

	mu      sync.Mutex
	last    string // the progress line on screen (tty)
	printed time.Time
}

func newProgress(w io.Writer, total time.Duration) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total, printed: time.Now()}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) sample(s soak.Sample) {
	line := progressLine(s, p.total)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		p.last = line
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		return
	}
	if time.Since(p.printed) >= soakProgressEvery {
		p.printed = time.Now()
		fmt.Fprintln(p.w, line)
	}
}

// logf prints a line; on a terminal, above the progress line. An empty
// line only ends the progress line.
func (p *progress) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
		if msg != "" {
			fmt.Fprintln(p.w, msg)
			fmt.Fprint(p.w, p.last)
		} else {
			p.last = ""
		}
		return
	}
	if msg != "" {
		fmt.Fprintln(p.w, msg)
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
		p.last = ""
	}
}

func progressLine(s soak.Sample, total time.Duration) string {
	phase := string(s.Phase)
	if phase == "" {
		phase = "-"
	}
	names := make([]string, 0, len(s.Sockets))
	for name, n := range s.Sockets {
		if n > 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	socks := make([]string, len(names))
	for i, name := range names {
		socks[i] = fmt.Sprintf("%s:%d", name, s.Sockets[name])
	}
	return fmt.Sprintf("[%5.1fs/%v] %-14s rpc ok %d failed %d  goroutines %d  fds %d  sockets %s  subchannels %d",
		time.Duration(s.At).Seconds(), total, phase, s.RPCsOK, s.RPCsFailed, s.Goroutines, s.FDs, strings.Join(socks, " "), s.Subchannels)
}
