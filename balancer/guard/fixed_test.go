package guard

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// The guard's pick_first shortcut hands grpc a picker that returns the real
// SubConn, which only a fake channel can show: grpc keeps a policy's
// pickers to itself. fakeCC is that channel; its SubConns change state when
// the test says so. The guard, its manager and grpc's children are real.
type fakeCC struct {
	balancer.ClientConn // nil: a call that is not faked panics

	mu     sync.Mutex
	scs    []*fakeSC
	states []balancer.State
}

func (f *fakeCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	sc := &fakeSC{listener: opts.StateListener}
	f.mu.Lock()
	f.scs = append(f.scs, sc)
	f.mu.Unlock()
	return sc, nil
}

func (f *fakeCC) UpdateState(s balancer.State) {
	f.mu.Lock()
	f.states = append(f.states, s)
	f.mu.Unlock()
}

func (f *fakeCC) ResolveNow(resolver.ResolveNowOptions) {}
func (f *fakeCC) Target() string                        { return "fake:///guard" }
func (f *fakeCC) MetricsRecorder() estats.MetricsRecorder {
	return estats.UnimplementedMetricsRecorder{}
}

func (f *fakeCC) last() balancer.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.states) == 0 {
		return balancer.State{}
	}
	return f.states[len(f.states)-1]
}

// connected returns the SubConns Connect was called on, in creation order.
func (f *fakeCC) connected() []*fakeSC {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*fakeSC
	for _, sc := range f.scs {
		sc.mu.Lock()
		if sc.connects > 0 {
			out = append(out, sc)
		}
		sc.mu.Unlock()
	}
	return out
}

type fakeSC struct {
	balancer.SubConn // nil: a call that is not faked panics

	listener func(balancer.SubConnState)
	mu       sync.Mutex
	connects int
	health   func(balancer.SubConnState) // nil: pick_first asked for none
}

func (sc *fakeSC) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.mu.Lock()
	sc.health = l
	sc.mu.Unlock()
}

func (sc *fakeSC) Connect() {
	sc.mu.Lock()
	sc.connects++
	sc.mu.Unlock()
}

func (sc *fakeSC) Shutdown() {
	go sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Shutdown})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// startOnFake builds leakproof_guard over child (a JSON child-policy list
// entry) on a fakeCC with the given backends, and makes each SubConn the
// child connects READY.
func startOnFake(t *testing.T, child string, backends ...string) *fakeCC {
	t.Helper()
	cfg, err := parseConfig(json.RawMessage(`{"childPolicy":[` + child + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCC{}
	g := builder{}.Build(f, balancer.BuildOptions{})
	t.Cleanup(g.Close)
	var s resolver.State
	for _, a := range backends {
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	if err := g.UpdateClientConnState(balancer.ClientConnState{ResolverState: s, BalancerConfig: cfg}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child to connect", func() bool { return len(f.connected()) > 0 })
	for _, sc := range f.connected() {
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	}
	// A child that listens for health (round_robin's pick_first) is READY
	// once its listener hears so.
	told := map[*fakeSC]bool{}
	waitFor(t, "READY", func() bool {
		for _, sc := range f.connected() {
			sc.mu.Lock()
			h := sc.health
			sc.mu.Unlock()
			if h != nil && !told[sc] {
				told[sc] = true
				h(balancer.SubConnState{ConnectivityState: connectivity.Ready})
			}
		}
		return f.last().ConnectivityState == connectivity.Ready
	})
	return f
}

// TestPickFirstReadyPickerIsTheSubConnItself: under the guard, grpc's
// pick_first's READY picker reaches the channel as a picker that returns
// the real SubConn directly, so a pick costs what pick_first's own does
// (no call through the manager's unwrapping picker); any other child's
// picker is passed on as it is.
func TestPickFirstReadyPickerIsTheSubConnItself(t *testing.T) {
	f := startOnFake(t, `{"pick_first":{}}`, "a:1")
	s := f.last()
	if _, ok := s.Picker.(*policy.FixedPicker); !ok {
		t.Fatalf("pick_first's READY picker reached the channel as a %T, want a *policy.FixedPicker", s.Picker)
	}
	res, err := s.Picker.Pick(balancer.PickInfo{})
	if err != nil || res.SubConn != balancer.SubConn(f.connected()[0]) {
		t.Fatalf("Pick = %v, %v; want the channel's own SubConn", res.SubConn, err)
	}

	f = startOnFake(t, `{"round_robin":{}}`, "b:1", "c:1")
	waitFor(t, "two SubConns", func() bool { return len(f.connected()) == 2 })
	s = f.last()
	if _, ok := s.Picker.(*policy.FixedPicker); ok {
		t.Fatal("round_robin's READY picker was replaced by a fixed one")
	}
}

// TestMarshalJSONOfAConfigNotParsed: a config not built by ParseConfig has
// no JSON to give back, and says so instead of marshalling an empty one.
func TestMarshalJSONOfAConfigNotParsed(t *testing.T) {
	if js, err := json.Marshal(&lbConfig{}); err == nil || !strings.Contains(err.Error(), "not built by ParseConfig") {
		t.Fatalf("json.Marshal(&lbConfig{}) = %s, %v; want an error", js, err)
	}
}
