package soak

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// childEnv makes a process started by the soak one of the soak's child
// modes instead of its main: the soak re-executes its own binary (the CLI,
// a test binary, any program that imports this package), so that a child
// exists wherever a soak can run, with no other program installed. The
// value is "idle:<duration>" (a child that holds nothing and exits: the
// exec fault) or "starve:<duration>" (the resolver-starvation soak, run
// under a lowered RLIMIT_NOFILE).
//
// Where the child starts is the one thing importing this package does
// beyond declaring it, and only in a process the soak started with
// childEnv set:
//
//   - the idle child, and a starve child whose policy is registered by the
//     time this package's init runs (leakproof's, grpc's, and so every
//     policy of the CLI), run from init and exit: nothing of the program
//     runs, not even a test binary's TestMain;
//   - a starve child whose policy a later package registers (a policy in
//     the user's own test package, or a grpc policy the program imports,
//     whose init may run after this one's) runs from RunChild, which Run
//     calls first, once every init has run: the binary is re-executed with
//     -test.run narrowed to the test that called Run (its own arguments
//     for a program that is not a test), and the first Run (or RunChild)
//     it reaches becomes the child.
const childEnv = "LEAKPROOF_SOAK_CHILD"

// Further environment of the starve child.
const (
	// serviceConfigEnv carries the service config of the channels under
	// test, policyEnv the policy it selects (in Config.Policy's notation).
	serviceConfigEnv = "LEAKPROOF_SOAK_SERVICE_CONFIG"
	policyEnv        = "LEAKPROOF_SOAK_POLICY"
	// reportFD is the descriptor the starve child writes its report to:
	// not stdout, which a test binary's -test.v output shares.
	reportFD = 3
)

func init() {
	mode, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	if strings.HasPrefix(mode, "starve:") && policyRegistered(cmp.Or(os.Getenv(policyEnv), DefaultPolicy)) != nil {
		return // registered later: Run starts the child (childFromRun)
	}
	os.Exit(runChild(mode))
}

// RunChild runs this process as the soak's child and exits, if the soak
// started it as one; otherwise it returns at once. Run calls it first, so
// tests need nothing. A program that calls Run after work a re-execution
// must not repeat (the leakproof CLI creates its output files) calls it
// first thing in main.
func RunChild() {
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(runChild(mode))
	}
}

// runChild runs the child mode and returns the exit status.
func runChild(mode string) int {
	name, arg, _ := strings.Cut(mode, ":")
	d, err := time.ParseDuration(arg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak child: bad %s=%q: %v\n", childEnv, mode, err)
		return 2
	}
	switch name {
	case "idle":
		time.Sleep(d)
		return 0
	case "starve":
		sc := os.Getenv(serviceConfigEnv)
		if sc == "" {
			sc = serviceConfig(DefaultPolicy, DefaultDrainTimeout)
		}
		return starveChild(d, sc, os.NewFile(reportFD, "report"))
	}
	fmt.Fprintf(os.Stderr, "soak child: unknown mode %q\n", name)
	return 2
}

// childCommand returns the command that runs the child mode of this binary:
// the executable, its arguments and its environment. It runs /proc/self/exe
// where there is one: the running binary itself even if its file was
// replaced or removed since it started (a rebuild during an hour-long
// soak), where the path os.Executable names would run another.
func childCommand(mode string, d time.Duration) (string, []string, []string, error) {
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return "", nil, nil, fmt.Errorf("soak: the child processes re-execute this binary: %w", err)
		}
	}
	return exe, childArgs(), append(os.Environ(), fmt.Sprintf("%s=%s:%v", childEnv, mode, d)), nil
}

// childArgs are the arguments that bring a re-executed binary to Run: in a
// test binary, -test.run narrowed to the test running now (found on the
// calling goroutine's stack), so that no other test runs first; in any
// other program, its own arguments. A child that starts from init never
// reads them.
func childArgs() []string {
	if flag.Lookup("test.run") == nil {
		return os.Args[1:]
	}
	if name := testOnStack(); name != "" {
		return []string{"-test.run=^" + name + "$", "-test.count=1"}
	}
	return []string{"-test.count=1"}
}

// testOnStack returns the name of the top-level test function on the
// calling goroutine's stack: the function testing.tRunner called.
func testOnStack() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	var prev string
	for {
		f, more := frames.Next()
		if f.Function == "testing.tRunner" {
			// prev is "path/pkg.TestX" or "path/pkg.TestX.func1" (a
			// subtest's closure): the test is its second dotted part.
			base := prev[strings.LastIndex(prev, "/")+1:]
			if parts := strings.Split(base, "."); len(parts) >= 2 && strings.HasPrefix(parts[1], "Test") {
				return parts[1]
			}
			return ""
		}
		prev = f.Function
		if !more {
			return ""
		}
	}
}
