package soak_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/soak"
)

// dnsFaults are the resolver faults as DNS answers (overlap is skipped:
// DNS cannot express it).
var dnsFaults = []soak.Fault{soak.FaultDuplicate, soak.FaultOverlap, soak.FaultFlap, soak.FaultResolverError, soak.FaultEmpty}

// Under ResolverDNS the channels resolve through grpc's dns resolver and
// the run's DNS server; with reresolveInterval leakproof_round_robin asks
// DNS again while grpc's round_robin, beside it, never does.
func TestDNSResolver(t *testing.T) {
	res, err := soak.Run(context.Background(), soak.Config{
		Duration:      soakDuration(t, 8*time.Second),
		Resolver:      soak.ResolverDNS,
		ServiceConfig: `{"loadBalancingConfig":[{"leakproof_round_robin":{"reresolveInterval":"1s","drainTimeout":"1s"}}]}`,
		Compare:       "round_robin",
		Faults:        dnsFaults,
	})
	if err != nil {
		t.Fatal(err)
	}
	report := text(res)
	t.Logf("report:\n%s", report)
	if !res.Pass {
		t.Fatalf("soak failed:\n%s", res.Verdict())
	}
	if !strings.HasPrefix(res.Target, "dns://127.0.0.1:") {
		t.Errorf("Target %q, want dns://127.0.0.1:PORT/…", res.Target)
	}
	d := res.DNS
	if d == nil {
		t.Fatal("no DNS report")
	}
	if d.Skipped[soak.FaultOverlap] == "" || !strings.Contains(report, "overlap skipped: endpoints with several addresses") {
		t.Errorf("overlap not reported as skipped: %+v", d.Skipped)
	}
	if time.Duration(d.MinResolutionInterval) != soak.DNSMinResolutionInterval || !strings.Contains(report, "minimum resolution interval lowered to 1s") {
		t.Errorf("the report does not say the run lowered grpc's minimum resolution interval")
	}
	if d.Compare == nil || d.Main.Answered <= d.Compare.Answered {
		t.Errorf("main answered %d A queries, compare %+v: reresolveInterval made no difference", d.Main.Answered, d.Compare)
	}
	var learned bool
	for _, rm := range res.Removals.List {
		if rm.Outcome == soak.RemovalReleased && rm.AnsweredAt > 0 {
			learned = true
			if rm.AnsweredAt < rm.RemovedAt {
				t.Errorf("removal %+v answered before it was removed", rm)
			}
		}
	}
	if !learned {
		t.Errorf("no removal released after a DNS answer without it: %+v", res.Removals)
	}
	// grpc's round_robin never asks DNS again: its removals are never
	// learned, and the report names the cure.
	if cr := res.CompareRemovals; cr == nil || cr.Unasked == 0 || cr.Released+cr.Leaked != 0 {
		t.Errorf("round_robin's removals %+v: want every one never learned", cr)
	}
	var cure bool
	for _, c := range res.Checks {
		cure = cure || (strings.HasSuffix(c.Name, soak.CheckRemovals) && strings.Contains(c.Detail, "cure: the policy's reresolveInterval"))
	}
	if !cure {
		t.Errorf("no removal check names the cure for removals never learned: %+v", res.Checks)
	}
	for _, want := range []string{"removed from DNS at", "first answer without it", "sockets closed at"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not show %q", want)
		}
	}
}

// The leaky policy forgets the subchannel of an address the DNS answer no
// longer lists: caught, naming the backend. Under the guard, which reclaims
// it, the same run passes. rst lists the resetting backend and freeze
// drops it, resetting connections halfway, which makes the channel ask DNS.
// (The faults are chosen so that the end of the timeline, which restores
// the base list, removes nothing: a removal the channel learns from DNS
// just before Close leaves the guard no time to reclaim.)
func TestLeakyPolicyCaughtUnderDNS(t *testing.T) {
	for _, tc := range []struct {
		policy string
		pass   bool
	}{
		{leakzoo.ForgetRemoved, false},
		{"leakproof_guard:" + leakzoo.ForgetRemoved, true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			res, err := soak.Run(context.Background(), soak.Config{
				Duration: 8 * time.Second,
				Resolver: soak.ResolverDNS,
				Policy:   tc.policy,
				Faults:   []soak.Fault{soak.FaultReset, soak.FaultFreeze, soak.FaultFlap},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", text(res))
			if res.Pass != tc.pass {
				t.Fatalf("pass = %v, want %v:\n%s", res.Pass, tc.pass, res.Verdict())
			}
			if tc.pass {
				return
			}
			c := checkByName(t, res, soak.CheckRemovals)
			var leaked *soak.Removal
			for i, rm := range res.Removals.List {
				if rm.Outcome == soak.RemovalLeaked {
					leaked = &res.Removals.List[i]
				}
			}
			if leaked == nil || c.Pass || !strings.Contains(c.Detail, "backend "+leaked.Backend+" ("+leaked.Addr+")") {
				t.Fatalf("no leaked removal named in %s: %s", c.Name, c.Detail)
			}
			if leaked.AnsweredAt == 0 {
				t.Errorf("leaked removal %+v has no DNS answer without it", leaked)
			}
		})
	}
}
