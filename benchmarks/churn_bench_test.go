package benchmarks

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"
)

// churnEndpoints is the resolver list the churn benchmarks alternate
// between: n endpoints, of which pct percent (spread evenly, never the
// first one unless pct is 100, and clear of the patterns below) point at a different backend in generation 1
// than in generation 0. Like lists seen in production, it is not clean:
//
//   - every 20th endpoint (i%20 == 10) overlaps the next one: its addresses
//     are {backend i+1, backend i}, so round_robin's pick_first child for it
//     connects to backend i+1 as the next endpoint's does;
//   - every 50th (i%50 == 26) repeats the endpoint before it;
//   - every 100th (i%100 == 42) names its backend twice.
func churnEndpoints(n, pct, gen int) []resolver.Endpoint {
	changed := func(i int) bool {
		if pct <= 0 {
			return false
		}
		stride := 100 / pct
		return i%stride == 33%stride
	}
	backend := func(i int) resolver.Address {
		if gen == 1 && changed(i) {
			return resolver.Address{Addr: addr(20000 + i)} // a backend of its own, absent from generation 0
		}
		return resolver.Address{Addr: addr(i)}
	}
	eps := make([]resolver.Endpoint, n)
	for i := range eps {
		switch {
		case i%20 == 10 && i+1 < n:
			eps[i].Addresses = []resolver.Address{backend(i + 1), backend(i)}
		case i%50 == 26:
			eps[i].Addresses = eps[i-1].Addresses
		case i%100 == 42:
			eps[i].Addresses = []resolver.Address{backend(i), backend(i)}
		default:
			eps[i].Addresses = []resolver.Address{backend(i)}
		}
	}
	return eps
}

// churnPcts are the parts of the list that change in one update: none
// (a re-resolution that returns the same list), 1%, 10% and all of it.
var churnPcts = []int{0, 1, 10, 100}

// churnSizes are the list sizes of BenchmarkChurn; scaleSizes those of
// BenchmarkChurnScale.
var (
	churnSizes = []int{1000, 10000}
	scaleSizes = []int{1000, 2000, 5000, 10000}
)

// largeEnv enables the churn benchmarks above largeFrom endpoints. grpc-go's
// round_robin rebuilds its picker once per endpoint that turns READY, in
// O(endpoints): at 10,000 endpoints one 100% update (and the set-up before
// the timed loop) costs it tens of seconds of CPU and gigabytes allocated.
const (
	largeEnv  = "LEAKPROOF_BENCH_LARGE"
	largeFrom = 2000
)

// skipLarge skips b unless lists of n endpoints are enabled.
func skipLarge(b *testing.B, n int) {
	if n > largeFrom && os.Getenv(largeEnv) == "" {
		b.Skipf("%d endpoints: set %s=1 to run (tens of seconds per op for grpc's round_robin)", n, largeEnv)
	}
}

// BenchmarkChurn times one resolver update of 1,000 and 10,000 endpoints
// with 0%, 1%, 10% and 100% of them changed, for grpc-go's round_robin and
// pick_first and leakproof's, each built on the fake ClientConn. One op is
// one update, alternating between two lists that differ in the changed part,
// from the call to UpdateClientConnState until the policy is READY again on
// every backend of the new list: backends removed are shut down, new ones
// are connected (the fake makes them READY at once), and the picker is
// rebuilt. The 10,000-endpoint rows run only with LEAKPROOF_BENCH_LARGE=1.
//
// Reported besides ns/op: update-ns/op (the UpdateClientConnState call
// alone), cpu-ns/op (CPU time of the whole process, which counts work the
// policy hands to other goroutines), and subconns/op (NewSubConn calls per
// update: grpc's round_robin opens a second SubConn to every backend that two
// endpoints share, leakproof's one). At the end every SubConn created must
// have been shut down exactly once. pickers/op counts the policy's
// UpdateState calls per update. impl=leakproof-coalesce is
// leakproof_round_robin with "coalescePickers": true.
func BenchmarkChurn(b *testing.B) {
	for _, p := range append(policyImpls[:len(policyImpls):len(policyImpls)], coalesceImpl) {
		for _, n := range churnSizes {
			for _, pct := range churnPcts {
				b.Run(fmt.Sprintf("%v/endpoints=%d/changed=%d%%", p, n, pct), func(b *testing.B) {
					skipLarge(b, n)
					benchChurn(b, p, p.cfg, n, pct)
				})
			}
		}
	}
}

// BenchmarkChurnScale is BenchmarkChurn's round_robin at 1,000, 2,000, 5,000
// and 10,000 endpoints, for a 1% and a 100% change, named so that
//
//	benchstat -col /endpoints
//
// prints how the cost of each grows with the list. Above 2,000 endpoints it
// runs only with LEAKPROOF_BENCH_LARGE=1. impl=floor is the least a round
// robin over grpc's pick_first children can do (floorName): its growth is
// what the children and the machine's memory add, which no round robin
// built on them can go below.
func BenchmarkChurnScale(b *testing.B) {
	for _, p := range append(policyImpls[:len(policyImpls):len(policyImpls)], coalesceImpl, floorImpl) {
		if !p.roundRobin() {
			continue
		}
		for _, pct := range []int{1, 100} {
			for _, n := range scaleSizes {
				b.Run(fmt.Sprintf("%v/changed=%d%%/endpoints=%d", p, pct, n), func(b *testing.B) {
					skipLarge(b, n)
					benchChurn(b, p, p.cfg, n, pct)
				})
			}
		}
	}
}

// BenchmarkChurnTrace is BenchmarkChurn's leakproof_round_robin with tracing
// off, with the ring, and with a subscriber attached.
func BenchmarkChurnTrace(b *testing.B) {
	p := policyImpls[1]
	for _, pct := range []int{1, 10, 100} {
		for _, mode := range traceModes {
			b.Run(fmt.Sprintf("%v/endpoints=1000/changed=%d%%/trace=%s", p, pct, mode), func(b *testing.B) {
				cfg, stop := traceConfig(b, mode)
				defer stop()
				benchChurn(b, p, cfg, 1000, pct)
			})
		}
	}
}

func benchChurn(b *testing.B, p policyImpl, cfg string, n, pct int) {
	benchChurnOn(b, p, cfg, n, pct, buildOnFake)
}

// benchChurnOn is benchChurn with the policy built by build.
func benchChurnOn(b *testing.B, p policyImpl, cfg string, n, pct int, build func(testing.TB, string, string) *onFake) {
	lists := [2][]resolver.Endpoint{churnEndpoints(n, pct, 0), churnEndpoints(n, pct, 1)}
	var ready [2]func(balancer.State) bool
	for g, eps := range lists {
		first, all := firstAddrs(eps)
		want := first
		if !p.roundRobin() {
			want = all
		}
		ready[g] = readyOn(want, p.roundRobin(), len(eps))
	}
	f := build(b, p.builder, cfg)
	settle := func(g int) { f.cc.waitFor(b, "READY on the new list", ready[g]) }
	f.update(b, lists[0])
	settle(0)
	created0, _ := f.cc.counts()
	updates0 := f.cc.stateUpdates()
	// The set-up's garbage is not the update's: at 10,000 endpoints the
	// timed loop may run once, and would otherwise pay for collecting it.
	runtime.GC()

	b.ReportAllocs()
	var inUpdate time.Duration
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		g := (i + 1) % 2
		i++
		t := time.Now()
		f.update(b, lists[g])
		inUpdate += time.Since(t)
		settle(g)
	}
	cpu := cpuTime() - cpu0
	created, _ := f.cc.counts()
	b.ReportMetric(float64(f.cc.stateUpdates()-updates0)/float64(b.N), "pickers/op")
	b.ReportMetric(float64(inUpdate.Nanoseconds())/float64(b.N), "update-ns/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(created-created0)/float64(b.N), "subconns/op")
	f.close(b)
}
