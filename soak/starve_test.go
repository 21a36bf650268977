package soak

import (
	"context"
	"strings"
	"testing"
	"time"
)

// starveChildReport runs the starvation child for d, as the fault does, with
// extra environment, and returns its report.
func starveChildReport(t *testing.T, d time.Duration, extraEnv ...string) *starveReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+starveChildSlack)
	defer cancel()
	rep, err := runStarveChild(ctx, d, extraEnv...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestResolverStarvationRecovers: under a lowered RLIMIT_NOFILE, with the
// resolver failing for stretches, RPCs fail with the resolver's error,
// nothing spins, descriptors stay flat, and every channel serves again when
// the resolver recovers.
func TestResolverStarvationRecovers(t *testing.T) {
	rep := starveChildReport(t, 2*time.Second)
	t.Logf("report: %+v", rep)
	if len(rep.Problems) > 0 {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Cycles < 2 || rep.StarvedRPCs == 0 || rep.ClearErrors != rep.StarvedRPCs || rep.Recovered != rep.StarvedRPCs || rep.Limit == 0 {
		t.Fatalf("report %+v: want 2+ cycles, every starved RPC failing clearly and recovering, a lowered limit", rep)
	}
}

// TestResolverStarvationCatchesABusyLoop uses the test double of a
// resolver that retries at once: the child must call it a busy loop.
func TestResolverStarvationCatchesABusyLoop(t *testing.T) {
	rep := starveChildReport(t, time.Second, starveBusyEnv+"=1")
	t.Logf("report: %+v", rep)
	if !strings.Contains(strings.Join(rep.Problems, "; "), "busy loop") {
		t.Fatalf("a resolver retrying without backoff was not called a busy loop: %+v", rep)
	}
}
