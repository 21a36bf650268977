// Command leakproof runs fault-injecting soaks of gRPC clients on loopback
// backends and inspects refcount traces.
//
//	leakproof soak [flags]            run the soak (the main job)
//	leakproof trace <command> [flags] inspect refcount traces
//
// Run `leakproof <command> -h` for a command's flags.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/leakproof/leakproof/soak"

	// grpc's policies that --policy leakproof_guard:NAME and
	// --service-config may name (soak.GuardedGRPCPolicies).
	_ "google.golang.org/grpc/balancer/leastrequest"
	_ "google.golang.org/grpc/balancer/ringhash"
	_ "google.golang.org/grpc/balancer/weightedroundrobin"
)

func main() {
	soak.RunChild() // before anything a re-execution must not repeat
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: leakproof <command> [flags]

commands:
  soak    run a fault-injecting soak on loopback backends and check for leaks
  trace   inspect refcount traces (watch, list, check, show)
`

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "soak":
		return soakMain(args[1:], stdout, stderr)
	case "trace":
		return traceMain(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "leakproof: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
