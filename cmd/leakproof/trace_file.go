package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/leakproof/leakproof/internal/termsafe"
	"github.com/leakproof/leakproof/trace"
)

func traceCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("check", "FILE | --addr HOST:PORT [connection flags] [--target T] [--grace D]", stderr)
	cf := addConnFlags(fs, "check the live process serving the admin service at `HOST:PORT` instead of a file")
	addr := &cf.addr
	target := fs.String("target", "", "with --addr: only channels with this `target`")
	grace := fs.Duration("grace", 0, "with --addr: how long sockets of a shut-down subchannel may stay open before they count as leaked (default: the service's, 30s)")
	timeout := fs.Duration("timeout", defaultTimeout, "with --addr: give up on the service after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	switch {
	case *addr != "" && len(pos) > 0:
		return usageError(fs, "give a FILE or --addr, not both")
	case *addr == "" && len(pos) != 1:
		return usageError(fs, "give one trace FILE (- for standard input) or --addr")
	case *grace < 0:
		return usageError(fs, "--grace %v: want more than 0", *grace)
	}
	if *addr != "" {
		if err := cf.check(); err != nil {
			return usageError(fs, "%v", err)
		}
		var g *time.Duration // unset: the service's default
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "grace" {
				g = grace
			}
		})
		if g != nil && *g == 0 {
			return usageError(fs, "--grace 0s: want more than 0 (every socket finishing its last stream would count as leaked)")
		}
		return checkLive(ctx, cf, g, *target, *timeout, stdout, stderr)
	}
	r, name, closeFn, code := openTrace(pos[0], stdin, stderr, "check")
	if r == nil {
		return code
	}
	defer closeFn()
	return checkTraceReader(r, name, stdout, stderr)
}

func traceShow(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("show", "FILE --subchannel N", stderr)
	id := fs.Uint64("subchannel", 0, "the subchannel `N` to show (required)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	switch {
	case len(pos) != 1:
		return usageError(fs, "give one trace FILE (- for standard input)")
	case *id == 0:
		return usageError(fs, "--subchannel is required (subchannel ids start at 1)")
	}
	r, name, closeFn, code := openTrace(pos[0], stdin, stderr, "show")
	if r == nil {
		return code
	}
	defer closeFn()
	return showTraceReader(r, name, *id, stdout, stderr)
}

// openTrace opens the trace named by arg ("-" is stdin). On failure it
// reports the error and returns a nil reader and the exit code.
func openTrace(arg string, stdin io.Reader, stderr io.Writer, cmd string) (io.Reader, string, func(), int) {
	if arg == "-" {
		return stdin, "standard input", func() {}, exitOK
	}
	f, err := os.Open(arg)
	if err != nil {
		fmt.Fprintf(stderr, "leakproof trace %s: %v\n", cmd, err)
		return nil, "", nil, exitError
	}
	return f, arg, func() { f.Close() }, exitOK
}

// readTrace reads a whole trace, reporting an unreadable one.
func readTrace(r io.Reader, name, cmd string, stderr io.Writer) ([]trace.Event, bool) {
	events, err := trace.Read(r)
	if err != nil {
		var te *trace.ReadError
		if errors.As(err, &te) {
			fmt.Fprintf(stderr, "leakproof trace %s: %s: line %d: %v\n", cmd, name, te.Line, te.Err)
		} else {
			fmt.Fprintf(stderr, "leakproof trace %s: %s: %v\n", cmd, name, err)
		}
		return nil, false
	}
	if len(events) == 0 {
		fmt.Fprintf(stderr, "leakproof trace %s: %s: no trace events\n", cmd, name)
		return nil, false
	}
	return events, true
}

// checkTraceReader replays the trace in r and writes a report naming every
// problem with its evidence. It returns exitProblem if there is one,
// exitError if the trace cannot be read, and exitOK otherwise.
func checkTraceReader(r io.Reader, name string, stdout, stderr io.Writer) int {
	events, ok := readTrace(r, name, "check", stderr)
	if !ok {
		return exitError
	}
	rep := trace.Check(events)
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, p := range slices.Concat(rep.Problems, rep.Orphans) {
		fmt.Fprintln(w, problemLine(p))
		for _, e := range p.Events {
			fmt.Fprintf(w, "    %s\n", formatEvent(e, false))
		}
	}
	verdict := "clean"
	if n := len(rep.Problems); n > 0 {
		verdict = fmt.Sprintf("%d problem(s)", n)
	}
	if n := len(rep.Orphans); n > 0 {
		// A reclaimed orphan leaked nothing, but names a bug in the policy.
		verdict += fmt.Sprintf("; %d orphan(s): a policy held subchannels after their address left the resolver state", n)
	}
	fmt.Fprintf(w, "%s: %d event(s), %d subchannel(s): %d destroyed, %d live: %s\n",
		name, rep.Events, rep.Subchannels, rep.Destroyed, rep.Live, verdict)
	if !rep.Clean() || len(rep.Orphans) > 0 {
		return exitProblem
	}
	return exitOK
}

// showTraceReader writes every event of subchannel id in the trace in r,
// then what a check says about it. It returns exitProblem if the trace has
// no event for id.
func showTraceReader(r io.Reader, name string, id uint64, stdout, stderr io.Writer) int {
	events, ok := readTrace(r, name, "show", stderr)
	if !ok {
		return exitError
	}
	rep := trace.Check(events) // sorts by seq; the evidence is capped
	var mine []trace.Event
	for _, e := range events {
		if e.Subchannel == id {
			mine = append(mine, e)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintf(stderr, "leakproof trace show: %s: no event for subchannel #%d\n", name, id)
		return exitProblem
	}
	slices.SortStableFunc(mine, func(a, b trace.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "subchannel #%d %s, manager %d, target %s: %d event(s)\n", id, termsafe.Quote(mine[0].Key), mine[0].Manager, strconv.Quote(mine[0].Target), len(mine))
	for _, e := range mine {
		fmt.Fprintln(w, formatEvent(e, false))
	}
	problems := 0
	for _, p := range rep.Problems {
		if p.Subchannel == id {
			fmt.Fprintln(w, problemLine(p))
			problems++
		}
	}
	for _, p := range rep.Orphans { // reported, but it may still have been destroyed
		if p.Subchannel == id {
			fmt.Fprintln(w, problemLine(p))
		}
	}
	last := mine[len(mine)-1]
	switch {
	case problems > 0:
	case last.Kind == trace.KindDestroy:
		fmt.Fprintf(w, "destroyed after %v\n", last.Time.Sub(mine[0].Time).Round(time.Microsecond))
	default:
		fmt.Fprintf(w, "alive at the end of the trace (refs %d)\n", last.RefsAfter)
	}
	return exitOK
}

// problemLine renders p as one line, with its channel's target when the
// evidence names it:
//
//	leak: subchannel #7 10.0.0.1:443 (manager 1, target "dns:///svc"): shut down but never destroyed
func problemLine(p trace.Problem) string {
	target := ""
	if len(p.Events) > 0 && p.Events[0].Target != "" {
		target = ", target " + strconv.Quote(p.Events[0].Target)
	}
	return fmt.Sprintf("%s: subchannel #%d %s (manager %d%s): %s", p.Kind, p.Subchannel, termsafe.Quote(p.Key), p.Manager, target, termsafe.Escape(p.Message))
}
