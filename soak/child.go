package soak

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// childEnv makes a process started by the soak run one of the soak's child
// modes instead of its main: the soak re-executes its own binary (the CLI,
// a test binary, any program that imports this package), so that a child
// exists wherever a soak can run, with no other program installed. The
// value is "idle:<duration>" (a child that holds nothing and exits: the
// exec fault) or "starve:<duration>" (the resolver-starvation soak, run
// under a lowered RLIMIT_NOFILE).
const childEnv = "LEAKPROOF_SOAK_CHILD"

// serviceConfigEnv carries the service config of the channels under test
// to the starve child.
const serviceConfigEnv = "LEAKPROOF_SOAK_SERVICE_CONFIG"

func init() {
	mode, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	os.Exit(runChild(mode))
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
		return starveChild(d, sc, os.Stdout)
	}
	fmt.Fprintf(os.Stderr, "soak child: unknown mode %q\n", name)
	return 2
}

// childCommand returns the command that runs the child mode of this binary.
// It runs /proc/self/exe where there is one: the running binary itself even
// if its file was replaced or removed since it started (a rebuild during an
// hour-long soak), where the path os.Executable names would run another.
func childCommand(mode string, d time.Duration) (string, []string, error) {
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return "", nil, fmt.Errorf("soak: the child processes re-execute this binary: %w", err)
		}
	}
	return exe, append(os.Environ(), fmt.Sprintf("%s=%s:%v", childEnv, mode, d)), nil
}
