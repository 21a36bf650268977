package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leakproof/leakproof/trace"
)

const traceUsage = `usage: leakproof trace <command> [flags]

Inspect refcount traces: live, from a process that serves the admin service
(admin.Register), or offline, from a JSON-lines trace file
(trace.NewWriter, or "leakproof trace watch --json").

commands:
  watch --addr HOST:PORT [--from SEQ] [--target T] [--key K] [--subchannel N] [--count N] [--json]
        print refcount events as they happen, one line each, until Ctrl-C
  list  --addr HOST:PORT [--target T] [--page-size N] [--timeout D] [--json]
        the live subchannels: state, references and holders, sockets, and
        their channelz ids
  check FILE | check --addr HOST:PORT [--target T] [--grace D] [--timeout D]
        name every leaked subchannel, unbalanced reference and orphan, with
        the events that show it; FILE "-" reads standard input
  show  FILE --subchannel N
        the whole history of one subchannel in a trace file

connection flags (watch, list, check --addr):
  --tls                     TLS, verifying the server against the system roots
  --ca FILE                 verify the server against these PEM CAs (implies --tls)
  --cert FILE               a client certificate, for mTLS (implies --tls)
  --cert-key FILE           the private key of --cert
  --server-name NAME        the name the server certificate carries; also the authority
  --header 'NAME: VALUE'    metadata on every call (repeatable)
  --token-file FILE         'authorization: Bearer <FILE>' on every call (needs TLS)
  --max-recv-bytes N        the largest response accepted (default 256 MiB)

Keys, holders, targets and addresses come from resolvers and control planes:
they are printed quoted (Go syntax) when they hold anything but printable
characters.

exit status:
  0  done; check: no problem
  1  check: a leak, an unbalanced reference or an orphan (a policy under
     leakproof_guard held a subchannel after its address left the resolver
     state); show: no event for the subchannel
  2  bad usage, an unreadable trace, or the admin service could not be reached
`

// Exit codes of the trace commands.
const (
	exitOK      = 0
	exitProblem = 1
	exitError   = 2
)

// traceMain runs `leakproof trace`; Ctrl-C (or SIGTERM) stops a watch.
func traceMain(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return traceRun(ctx, args, os.Stdin, stdout, stderr)
}

// traceRun is traceMain with its context and standard input given.
func traceRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, traceUsage)
		return exitError
	}
	switch args[0] {
	case "watch":
		return traceWatch(ctx, args[1:], stdout, stderr)
	case "list":
		return traceList(ctx, args[1:], stdout, stderr)
	case "check":
		return traceCheck(ctx, args[1:], stdin, stdout, stderr)
	case "show":
		return traceShow(args[1:], stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, traceUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "leakproof trace: unknown command %q\n\n%s", args[0], traceUsage)
		return exitError
	}
}

// newFlags returns a flag set for `leakproof trace name` whose usage is
// synopsis followed by the flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("leakproof trace "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: leakproof trace %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags given before, between and after positional
// arguments (`show FILE --subchannel 3`) and returns the positional ones.
// The error is flag.ErrHelp for -h, or an error already reported with the
// usage.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// usageError reports a usage error the flag package did not catch.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return exitError
}

// parseExit is the exit code for a failed parseArgs: 0 after -h.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitError
}

// rpcFailed reports a failed call to the admin service at addr.
func rpcFailed(stderr io.Writer, cmd, addr string, err error) int {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable:
		hint := ""
		if strings.Contains(st.Message(), "handshake") || strings.Contains(st.Message(), "tls:") {
			hint = " (TLS: check --tls, --ca, --cert/--cert-key and --server-name)"
		}
		fmt.Fprintf(stderr, "leakproof trace %s: cannot reach the admin service at %s%s: %s\n", cmd, addr, hint, st.Message())
	case codes.Unauthenticated, codes.PermissionDenied:
		fmt.Fprintf(stderr, "leakproof trace %s: %s refused the call (%s; see --header, --token-file, --cert): %s\n", cmd, addr, st.Code(), st.Message())
	case codes.ResourceExhausted:
		fmt.Fprintf(stderr, "leakproof trace %s: %s: %s (a response larger than --max-recv-bytes? narrow it with --target or raise the limit)\n", cmd, addr, st.Message())
	case codes.Unimplemented:
		fmt.Fprintf(stderr, "leakproof trace %s: %s does not serve leakproof.admin.v1.AdminService (call admin.Register on its gRPC server): %s\n", cmd, addr, st.Message())
	case codes.DeadlineExceeded:
		fmt.Fprintf(stderr, "leakproof trace %s: no answer from %s in time (--timeout): %s\n", cmd, addr, st.Message())
	default:
		fmt.Fprintf(stderr, "leakproof trace %s: %s: %s: %s\n", cmd, addr, st.Code(), st.Message())
	}
	return exitError
}

// formatEvent renders e as one line: its time, then Event.String, then its
// target if withTarget.
//
//	10:00:00.000123 seq=12 #7 127.0.0.1:50051 unref 2->1 holder=endpoint[1] state=READY reason="address removed"
func formatEvent(e trace.Event, withTarget bool) string {
	s := e.String() // quotes or escapes every string from outside
	if !e.Time.IsZero() {
		s = e.Time.Local().Format("15:04:05.000000") + " " + s
	}
	if withTarget && e.Subchannel != 0 && e.Target != "" {
		s += " target=" + strconv.Quote(e.Target)
	}
	return s
}

// defaultTimeout bounds the unary calls of list and check.
const defaultTimeout = 10 * time.Second
