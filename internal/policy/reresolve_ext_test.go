package policy_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// countingCC counts the ResolveNow calls a policy makes. A fake: the timer's
// cadence is what is tested here; the end-to-end tests of the policies run
// it on real channels and grpc's dns resolver.
type countingCC struct {
	balancer.ClientConn
	resolves atomic.Int64
	states   atomic.Int64
}

func (c *countingCC) ResolveNow(resolver.ResolveNowOptions) { c.resolves.Add(1) }
func (c *countingCC) UpdateState(balancer.State)            { c.states.Add(1) }

func TestReresolver(t *testing.T) {
	const interval = 20 * time.Millisecond
	cc := &countingCC{}
	r := policy.NewReresolver(cc)
	defer r.Close()
	r.SetInterval(interval)

	// Not READY yet: no timer.
	r.UpdateState(balancer.State{ConnectivityState: connectivity.Connecting})
	time.Sleep(5 * interval)
	if n := cc.resolves.Load(); n != 0 {
		t.Fatalf("%d ResolveNow calls before the policy was READY", n)
	}

	r.UpdateState(balancer.State{ConnectivityState: connectivity.Ready})
	waitFor(t, func() bool { return cc.resolves.Load() >= 3 }, "3 ResolveNow calls while READY")

	// Leaving READY stops it.
	r.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure})
	n := cc.resolves.Load()
	time.Sleep(5 * interval)
	if m := cc.resolves.Load(); m > n+1 { // one may have been firing
		t.Fatalf("%d ResolveNow calls after the policy left READY", m-n)
	}
	if got := cc.states.Load(); got != 3 {
		t.Errorf("%d states passed on, want 3", got)
	}

	// Off: none while READY.
	r.SetInterval(0)
	r.UpdateState(balancer.State{ConnectivityState: connectivity.Ready})
	n = cc.resolves.Load()
	time.Sleep(5 * interval)
	if m := cc.resolves.Load(); m != n {
		t.Fatalf("%d ResolveNow calls with the interval off", m-n)
	}

	// On again, then closed: none after Close (TestMain checks that no
	// timer goroutine is left).
	r.SetInterval(interval)
	waitFor(t, func() bool { return cc.resolves.Load() > n }, "a ResolveNow call after the interval was set again")
	r.Close()
	n = cc.resolves.Load()
	time.Sleep(5 * interval)
	if m := cc.resolves.Load(); m > n+1 {
		t.Fatalf("%d ResolveNow calls after Close", m-n)
	}
	r.UpdateState(balancer.State{ConnectivityState: connectivity.Ready})
	r.SetInterval(interval / 2)
	time.Sleep(5 * interval)
	if m := cc.resolves.Load(); m > n+1 {
		t.Fatalf("%d ResolveNow calls after Close", m-n)
	}
}

func TestReresolveIntervalErrors(t *testing.T) {
	for _, js := range []string{`{"reresolveInterval":"100ms"}`, `{"reresolveInterval":"48h"}`, `{"reresolveInterval":"often"}`} {
		_, err := policy.Parse("leakproof_test", []byte(js), 0, policy.Strict)
		if err == nil || !strings.Contains(err.Error(), "leakproof_test: invalid config: reresolveInterval") {
			t.Errorf("Parse(%s) = %v, want an error naming reresolveInterval", js, err)
		}
	}
	// Under grpc's names a bad value is ignored, as grpc would accept the
	// config; a good one is applied.
	if cfg, _ := policy.Parse("round_robin", []byte(`{"reresolveInterval":"100ms"}`), 0, policy.GRPCNames); cfg.Reresolve() != 0 || !cfg.IsDefault() {
		t.Errorf("under grpc's name a bad reresolveInterval gave %v", cfg.Reresolve())
	}
	if cfg, _ := policy.Parse("round_robin", []byte(`{"reresolveInterval":"2s"}`), 0, policy.GRPCNames); cfg.Reresolve() != 2*time.Second {
		t.Errorf("under grpc's name reresolveInterval 2s gave %v", cfg.Reresolve())
	}
	if cfg, _ := policy.Parse("round_robin", []byte(`{}`), 0, policy.GRPCNames); cfg.Reresolve() != 0 {
		t.Errorf("under grpc's name the default is %v, want off", cfg.Reresolve())
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
