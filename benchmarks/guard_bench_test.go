package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/leakproof/leakproof/balancer/guard"
	"google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/leastrequest" // registers least_request_experimental
	_ "google.golang.org/grpc/balancer/ringhash"     // registers ring_hash_experimental
	_ "google.golang.org/grpc/balancer/weightedroundrobin"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/metadata"
)

// guardChild is one of grpc-go's policies measured bare and under
// leakproof_guard, with the config it needs without xDS.
type guardChild struct {
	name, cfg string
}

var guardChildren = []guardChild{
	{"round_robin", "{}"},
	{"weighted_round_robin", "{}"},
	{"least_request_experimental", "{}"},
	{"ring_hash_experimental", `{"requestHashHeader":"x-ring-hash"}`},
	{"pick_first", "{}"},
}

// guardImpls returns the two sides of a guard comparison: the child policy
// as grpc registers it (impl=bare), and the same under the guard
// (impl=guard), each with its config.
func guardImpls(c guardChild) [2]struct{ impl, builder, cfg string } {
	bare := c.cfg
	if _, ok := balancer.Get(c.name).(balancer.ConfigParser); !ok {
		bare = "" // round_robin takes no config
	}
	return [2]struct{ impl, builder, cfg string }{
		{"bare", c.name, bare},
		{"guard", guard.Name, fmt.Sprintf(`{"childPolicy":[{%q:%s}]}`, c.name, c.cfg)},
	}
}

// guardPickInfo carries a context: ring_hash reads the request's metadata
// (here without the hash header, so it picks a random point on the ring).
var guardPickInfo = balancer.PickInfo{
	FullMethodName: "/leakproof.echo.v1.EchoService/Echo",
	Ctx:            metadata.NewOutgoingContext(context.Background(), metadata.MD{}),
}

// allReady returns a condition that holds once the policy is READY and
// picks reach every address in want within picks tries: the policies here
// pick at random (least_request, ring_hash) or by weight, so coverage is
// what is checked, not order.
func allReady(want map[string]bool, picks int) func(balancer.State) bool {
	seen := make(map[string]bool, len(want))
	return func(s balancer.State) bool {
		if s.Picker == nil {
			return false
		}
		if s.ConnectivityState != connectivity.Ready {
			// ring_hash connects an endpoint only when a pick lands on it.
			for range picks {
				s.Picker.Pick(guardPickInfo)
			}
			return false
		}
		clear(seen)
		for range picks {
			res, err := s.Picker.Pick(guardPickInfo)
			if err != nil {
				continue // ring_hash: an endpoint still connecting
			}
			a := res.SubConn.(*fakeSC).addr // the guard hands out the real SubConn
			if !want[a] {
				return false
			}
			seen[a] = true
			if len(seen) == len(want) {
				return true
			}
		}
		return false
	}
}

// BenchmarkGuardPick times one Pick of grpc-go's policies bare and under
// leakproof_guard, 100 endpoints all READY, serial and parallel. The guard
// wraps the child's picker once per picker update to hand grpc the real
// SubConn; per Pick it adds one call and one type assertion, and no
// allocation.
func BenchmarkGuardPick(b *testing.B) {
	const n = 100
	eps := simpleEndpoints(n)
	first, all := firstAddrs(eps)
	for _, c := range guardChildren {
		want := first
		if c.name == "pick_first" {
			want = all
		}
		for _, side := range guardImpls(c) {
			b.Run(fmt.Sprintf("policy=%s/impl=%s/endpoints=%d", c.name, side.impl, n), func(b *testing.B) {
				f := buildOnMeteredFake(b, side.builder, side.cfg)
				defer f.close(b)
				f.update(b, eps)
				if c.name == "pick_first" {
					f.cc.waitFor(b, "READY", readyOn(want, false, 1))
				} else {
					f.cc.waitFor(b, "READY on every endpoint", allReady(want, 200*n))
				}
				picker := f.cc.current().Picker
				b.Run("serial", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := picker.Pick(guardPickInfo); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("parallel", func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := picker.Pick(guardPickInfo); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			})
		}
	}
}

// BenchmarkGuardChurn is BenchmarkChurn for grpc-go's round_robin and
// weighted_round_robin, bare and under leakproof_guard (default trace ring):
// one resolver update of 1,000 endpoints with 0%, 1%, 10% and 100% of them
// changed, until READY on every backend of the new list. subconns/op shows
// what the shared subchannels save: endpoints that overlap share one
// subchannel under the guard.
func BenchmarkGuardChurn(b *testing.B) {
	for _, c := range guardChildren[:2] {
		for _, side := range guardImpls(c) {
			// Both children spread picks over every READY endpoint in turn,
			// so round_robin's readiness condition applies to both.
			p := policyImpl{policy: "round_robin", impl: side.impl, builder: side.builder}
			for _, pct := range churnPcts {
				b.Run(fmt.Sprintf("policy=%s/impl=%s/endpoints=1000/changed=%d%%", c.name, side.impl, pct), func(b *testing.B) {
					benchChurnOn(b, p, side.cfg, 1000, pct, buildOnMeteredFake)
				})
			}
		}
	}
}

// meteredCC is the fake ClientConn with a recorder that records nothing:
// weighted_round_robin records its metrics unconditionally and needs one.
// Both sides of a comparison run on it.
type meteredCC struct{ *fakeCC }

func (meteredCC) MetricsRecorder() estats.MetricsRecorder {
	return estats.UnimplementedMetricsRecorder{}
}

// buildOnMeteredFake is buildOnFake on a meteredCC.
func buildOnMeteredFake(tb testing.TB, name, cfg string) *onFake {
	tb.Helper()
	bb := balancer.Get(name)
	if bb == nil {
		tb.Fatalf("no balancer registered as %q", name)
	}
	p := &onFake{cc: newFakeCC()}
	if cfg != "" {
		c, err := bb.(balancer.ConfigParser).ParseConfig(json.RawMessage(cfg))
		if err != nil {
			tb.Fatalf("%s: ParseConfig(%s): %v", name, cfg, err)
		}
		p.cfg = c
	}
	p.bal = bb.Build(meteredCC{p.cc}, balancer.BuildOptions{})
	return p
}
