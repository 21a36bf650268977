package benchmarks

import (
	"fmt"
	"testing"

	lppickfirst "github.com/leakproof/leakproof/balancer/pickfirst"
	lproundrobin "github.com/leakproof/leakproof/balancer/roundrobin"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	grpcroundrobin "google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/resolver"
)

// A policyImpl is one policy as grpc-go implements it or as leakproof does.
type policyImpl struct {
	policy  string // round_robin or pick_first
	impl    string // grpc or leakproof
	builder string // the registered name
	cfg     string // its config, "" for none
}

func (p policyImpl) roundRobin() bool { return p.policy == "round_robin" }

func (p policyImpl) String() string { return "policy=" + p.policy + "/impl=" + p.impl }

var policyImpls = []policyImpl{
	{"round_robin", "grpc", grpcroundrobin.Name, ""},
	{"round_robin", "leakproof", lproundrobin.Name, ""},
	{"pick_first", "grpc", grpcpickfirst.Name, ""},
	{"pick_first", "leakproof", lppickfirst.Name, ""},
}

// coalesceImpl is leakproof_round_robin with coalescePickers, in the churn
// benchmarks only (picking is the same code).
var coalesceImpl = policyImpl{"round_robin", "leakproof-coalesce", lproundrobin.Name, `{"coalescePickers":true}`}

// traceModes are the ways leakproof's trace can be set up: no events at all
// (traceRingSize 0 and no subscriber), the default ring of 512 events per
// manager, the ring with a subscriber streaming every event, and the ring
// with 64 subscribers whose filter functions match nothing, and the ring
// with 64 subscribers whose trace.Match selects nothing (as an admin
// service's watchers of other channels or backends: found by a lookup,
// never called).
var traceModes = []string{"off", "ring", "sub", "sub64", "match64"}

// traceConfig returns the policy config for a trace mode and, for "sub",
// starts a subscriber that drains every event until the returned stop runs.
func traceConfig(tb testing.TB, mode string) (cfg string, stop func()) {
	tb.Helper()
	switch mode {
	case "off":
		return `{"traceRingSize":0}`, func() {}
	case "ring":
		return "", func() {}
	case "sub":
		return "", subscribe(tb)
	case "sub64":
		return "", subscribeNothing(64)
	case "match64":
		return "", matchNothing(64)
	}
	tb.Fatalf("unknown trace mode %q", mode)
	return "", nil
}

// addr is the address of backend i. Benchmarks on the fake never dial it.
func addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", 20000+i) }

// simpleEndpoints returns n endpoints of one address each.
func simpleEndpoints(n int) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, n)
	for i := range eps {
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: addr(i)}}}
	}
	return eps
}

// firstAddrs returns the first address of every endpoint (what round_robin
// connects to when every backend is up) and every address (any of which
// pick_first may pick).
func firstAddrs(eps []resolver.Endpoint) (first, all map[string]bool) {
	first, all = map[string]bool{}, map[string]bool{}
	for _, ep := range eps {
		first[ep.Addresses[0].Addr] = true
		for _, a := range ep.Addresses {
			all[a.Addr] = true
		}
	}
	return first, all
}

// readyPicker builds p on a fake, gives it eps and returns its READY picker
// once every backend is in it.
func readyPicker(b *testing.B, p policyImpl, cfg string, eps []resolver.Endpoint) (balancer.Picker, *onFake) {
	b.Helper()
	f := buildOnFake(b, p.builder, cfg)
	f.update(b, eps)
	first, all := firstAddrs(eps)
	want := first
	if !p.roundRobin() {
		want = all
	}
	f.cc.waitFor(b, "READY picker", readyOn(want, p.roundRobin(), len(eps)))
	return f.cc.current().Picker, f
}

var pickInfo = balancer.PickInfo{FullMethodName: "/leakproof.echo.v1.EchoService/Echo"}

// BenchmarkPick times one Pick of each policy's READY picker, grpc-go's and
// leakproof's, with every endpoint READY, from one goroutine (serial) and
// from GOMAXPROCS goroutines at once (parallel).
func BenchmarkPick(b *testing.B) {
	for _, p := range policyImpls {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("%v/endpoints=%d", p, n), func(b *testing.B) {
				picker, f := readyPicker(b, p, "", simpleEndpoints(n))
				defer f.close(b)
				benchPicker(b, picker)
			})
		}
	}
}

// BenchmarkPickTrace times leakproof_round_robin's Pick with tracing off,
// with the ring, and with a subscriber attached. Pick never traces: the
// three must not differ.
func BenchmarkPickTrace(b *testing.B) {
	p := policyImpls[1]
	for _, mode := range traceModes {
		b.Run(fmt.Sprintf("%v/endpoints=100/trace=%s", p, mode), func(b *testing.B) {
			cfg, stop := traceConfig(b, mode)
			defer stop()
			picker, f := readyPicker(b, p, cfg, simpleEndpoints(100))
			defer f.close(b)
			benchPicker(b, picker)
		})
	}
}

func benchPicker(b *testing.B, picker balancer.Picker) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		var sc balancer.SubConn
		for b.Loop() {
			res, err := picker.Pick(pickInfo)
			if err != nil {
				b.Fatal(err)
			}
			sc = res.SubConn
		}
		if sc == nil {
			b.Fatal("no SubConn picked")
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := picker.Pick(pickInfo); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
