package roundrobin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/leakproof/leakproof/balancer/pickfirst" // the policy switched to
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
)

var rrConfig = e2e.ServiceConfig(roundrobin.Name, "")

// both runs f with the socket-tracking dialer and without it.
func both(t *testing.T, f func(t *testing.T, o e2e.Options)) {
	t.Run("dialer", func(t *testing.T) { f(t, e2e.Options{}) })
	t.Run("nodialer", func(t *testing.T) { f(t, e2e.Options{NoDialer: true}) })
}

func TestDuplicatesShareOneSocketPerBackend(t *testing.T) {
	both(t, func(t *testing.T, o e2e.Options) {
		t.Cleanup(leaktest.Check(t))
		bs := e2e.StartBackends(t, 3)
		a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
		for name, state := range map[string]resolver.State{
			"addresses": e2e.AddrState(a, a, b, b, c),
			"endpoints": e2e.EndpointState([]string{a}, []string{a, b}, []string{b, c}),
		} {
			t.Run(name, func(t *testing.T) {
				cl := e2e.Dial(t, rrConfig, state, o)
				cl.WaitServed(a, b)
				if name == "addresses" {
					cl.WaitServed(c)
				}
				max := e2e.MaxSockets(t, 300*time.Millisecond, a, b, c)
				want := map[string]int{a: 1, b: 1, c: 1}
				if name == "endpoints" {
					// {B,C} connects to B, its first address; C is never needed.
					want[c] = 0
				}
				for addr, n := range max {
					if n != want[addr] {
						t.Errorf("%s: up to %d sockets to %s while open, want %d", name, n, addr, want[addr])
					}
				}
				cl.CC.Close()
				for _, addr := range []string{a, b, c} {
					e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
				}
			})
		}
	})
}

func TestRemovalClosesSocketsOnALiveChannel(t *testing.T) {
	both(t, func(t *testing.T, o e2e.Options) {
		t.Cleanup(leaktest.Check(t))
		bs := e2e.StartBackends(t, 3)
		a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
		cl := e2e.Dial(t, rrConfig, e2e.EndpointState([]string{a}, []string{a, b}, []string{b}, []string{c}), o)
		cl.WaitServed(a, b, c)

		cl.R.UpdateState(e2e.EndpointState([]string{c}))
		e2e.WaitSockets(t, a, 0, 2*time.Second)
		e2e.WaitSockets(t, b, 0, 2*time.Second)
		if n := e2e.Sockets(t, c); n != 1 {
			t.Fatalf("%d sockets to the remaining backend, want 1", n)
		}
		if _, err := cl.EchoOK(context.Background()); err != nil {
			t.Fatalf("channel unusable after removal: %v", err)
		}
	})
}

func TestFlapsNeverOpenASecondSocket(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	cl := e2e.Dial(t, rrConfig, e2e.AddrState(a, b, c), e2e.Options{})
	cl.WaitServed(a, b, c)

	var max sync.Map
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, addr := range []string{a, b, c} {
				n, err := leaktest.SocketsTo(addr)
				if err != nil {
					t.Error(err)
					return
				}
				if old, _ := max.Load(addr); old == nil || n > old.(int) {
					max.Store(addr, n)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	states := []resolver.State{
		e2e.AddrState(a, b, c),
		e2e.AddrState(c),
		e2e.EndpointState([]string{a, b}, []string{b}, []string{a}),
		e2e.AddrState(b, b, a),
	}
	for i := range 60 {
		cl.R.UpdateState(states[i%len(states)])
		if i%6 == 0 {
			if _, err := cl.EchoOK(context.Background()); err != nil {
				t.Fatalf("flap %d: %v", i, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-sampled
	max.Range(func(k, v any) bool {
		if v.(int) > 1 {
			t.Errorf("%v: up to %d sockets during 60 flaps, want at most 1", k, v)
		}
		return true
	})
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}

// goawayLoad runs concurrent unary RPCs through cc for d and returns the
// number that succeeded and failed.
func goawayLoad(cc grpc.ClientConnInterface, d time.Duration, workers int) (ok, failed int64) {
	client := echov1.NewEchoServiceClient(cc)
	var okN, failN atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := client.Echo(ctx, &echov1.EchoRequest{Message: "x"})
				cancel()
				if err != nil {
					failN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return okN.Load(), failN.Load()
}

// TestGoAwayStormAsGoodAsGRPC runs the same load through ours and grpc's
// round_robin at once, against backends that GOAWAY every ~100 ms.
func TestGoAwayStormAsGoodAsGRPC(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      100 * time.Millisecond,
		MaxConnectionAgeGrace: 200 * time.Millisecond,
	}))
	state := e2e.AddrState(e2e.Addrs(bs)...)
	ours := e2e.Dial(t, rrConfig, state, e2e.Options{})
	theirs := e2e.Dial(t, e2e.ServiceConfig("round_robin", ""), state, e2e.Options{NoDialer: true})
	ours.WaitServed(e2e.Addrs(bs)...)
	theirs.WaitServed(e2e.Addrs(bs)...)

	var wg sync.WaitGroup
	var oursOK, oursFail, theirOK, theirFail int64
	wg.Add(2)
	go func() { defer wg.Done(); oursOK, oursFail = goawayLoad(ours.CC, 1500*time.Millisecond, 4) }()
	go func() { defer wg.Done(); theirOK, theirFail = goawayLoad(theirs.CC, 1500*time.Millisecond, 4) }()
	wg.Wait()
	t.Logf("leakproof_round_robin: %d ok, %d failed; round_robin: %d ok, %d failed", oursOK, oursFail, theirOK, theirFail)
	if oursOK == 0 || theirOK == 0 {
		t.Fatal("no RPC succeeded")
	}
	oursRate := float64(oursFail) / float64(oursOK+oursFail)
	theirRate := float64(theirFail) / float64(theirOK+theirFail)
	if oursRate > theirRate+0.01 {
		t.Fatalf("failure rate %.3f%% under GOAWAYs, grpc's round_robin %.3f%%", 100*oursRate, 100*theirRate)
	}
	if n := ours.Trace.Count(trace.KindGoAway, ""); n < 3 {
		t.Fatalf("only %d GOAWAYs traced: the storm did not happen", n)
	}
	ours.CC.Close()
	theirs.CC.Close()
	ours.Trace.CheckClean(t)
}

// TestFrozenBackendNeitherBlocksNorSpins puts a backend that accepts TCP and
// never speaks HTTP/2 between two healthy ones.
func TestFrozenBackendNeitherBlocksNorSpins(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	healthy := e2e.StartBackends(t, 2)
	frozen := e2e.StartBackends(t, 1, testbackend.Frozen())[0]
	cl := e2e.Dial(t, rrConfig, e2e.AddrState(frozen.Addr(), healthy[0].Addr(), healthy[1].Addr()), e2e.Options{
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.DefaultConfig,
			MinConnectTimeout: 300 * time.Millisecond,
		})},
	})
	cl.WaitServed(healthy[0].Addr(), healthy[1].Addr())

	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	acceptedBefore := frozen.Stats().Accepted
	served := map[string]int{}
	end := time.Now().Add(2 * time.Second)
	maxFrozen := 0
	for time.Now().Before(end) {
		addr, err := cl.EchoOK(context.Background())
		if err != nil {
			t.Fatalf("RPC failed with a frozen backend in the list: %v", err)
		}
		served[addr]++
		if n := e2e.Sockets(t, frozen.Addr()); n > maxFrozen {
			maxFrozen = n
		}
	}
	if served[frozen.Addr()] != 0 || served[healthy[0].Addr()] == 0 || served[healthy[1].Addr()] == 0 {
		t.Fatalf("served by %v", served)
	}
	// Connect attempts to the frozen backend are paced by grpc's backoff
	// (each attempt waits out its connect deadline, max(300ms, backoff),
	// then the backoff of 1s, x1.6, jittered): one or two in two seconds.
	if attempts := frozen.Stats().Accepted - acceptedBefore; attempts > 2 {
		t.Fatalf("%d connection attempts to the frozen backend in 2s: a busy loop", attempts)
	}
	if maxFrozen > 1 {
		t.Fatalf("up to %d sockets to the frozen backend, want at most 1", maxFrozen)
	}
	now, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	if grown := len(now.FDs) - len(base.FDs); grown > 1 {
		t.Fatalf("fds grew by %d while the frozen backend was in the list", grown)
	}
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}

func TestChannelChurnReturnsToBaseline(t *testing.T) {
	bs := e2e.StartBackends(t, 2)
	check := leaktest.Check(t, leaktest.Backends(e2e.Addrs(bs)...))
	state := e2e.AddrState(e2e.Addrs(bs)...)
	for i := range 200 {
		cl := e2e.Dial(t, rrConfig, state, e2e.Options{NoDialer: i%2 == 1})
		if _, err := cl.EchoOK(context.Background()); err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		cl.CC.Close()
		cl.Trace.Close()
	}
	check()
}

func TestEmptyAddressListIsBadResolverState(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	cl := e2e.Dial(t, rrConfig, e2e.AddrState(bs[0].Addr()), e2e.Options{})
	cl.WaitServed(bs[0].Addr())
	if err := cl.R.CC().UpdateState(resolver.State{}); !errors.Is(err, balancer.ErrBadResolverState) {
		t.Fatalf("empty update: %v, want ErrBadResolverState", err)
	}
	e2e.WaitSockets(t, bs[0].Addr(), 0, 2*time.Second)
}

func TestResolverErrorReachesRPCs(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	cl := e2e.Dial(t, rrConfig, resolver.State{}, e2e.Options{})
	cl.R.CC().ReportError(errors.New("dns is down"))
	cl.WaitUnavailable("name resolver error: dns is down")
}

func TestHealthCheckedBackendIsAvoided(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	sc := `{"loadBalancingConfig":[{"leakproof_round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`
	cl := e2e.Dial(t, sc, e2e.EndpointState([]string{a}, []string{a, b}, []string{b}), e2e.Options{})
	cl.WaitServed(a, b)
	bs[0].SetServing(false)
	// Once the health update lands, every RPC goes to b.
	deadline := time.Now().Add(e2e.LongTimeout)
	for streak := 0; streak < 20; {
		if time.Now().After(deadline) {
			t.Fatal("RPCs still reach the NOT_SERVING backend")
		}
		addr, err := cl.EchoOK(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if addr == a {
			streak = 0
			continue
		}
		streak++
	}
	bs[0].SetServing(true)
	cl.WaitServed(a)
}

func TestParseConfig(t *testing.T) {
	p := balancer.Get(roundrobin.Name).(balancer.ConfigParser)
	for _, tc := range []struct {
		js      string
		wantErr string
	}{
		{`{}`, ""},
		{`{"drainTimeout":"2s","traceRingSize":0}`, ""},
		{`{"drainTimeout":"forever"}`, "drainTimeout"},
		{`{"drainTimeout":"-1s"}`, "must be positive"},
		{`{"drainTimeout":"0s"}`, "must be positive"},
		{`{"drainTimeout":"48h"}`, "at most"},
		{`{"traceRingSize":-1}`, "traceRingSize"},
		{`{"traceRingSize":100000000}`, "traceRingSize"},
		{`{"shuffleAddressList":true}`, "pick_first option"},
		{`{"coalescePickers":true,"drainTimeout":"2s"}`, ""},
		{`{"coalescePickers":"yes"}`, "invalid config"},
		{`{"drainTimout":"1s"}`, "unknown field"},
		{`[1,2]`, "invalid config"},
		{`{"drainTimeout":"1s"} {}`, "trailing"},
	} {
		_, err := p.ParseConfig(json.RawMessage(tc.js))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseConfig(%s) = %v", tc.js, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), roundrobin.Name)):
			t.Errorf("ParseConfig(%s) = %v, want an error naming %s and %q", tc.js, err, roundrobin.Name, tc.wantErr)
		}
	}
	// A bad config in the default service config is refused by grpc.NewClient.
	_, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(e2e.ServiceConfig(roundrobin.Name, `{"bogus":1}`)))
	if err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("NewClient with a bad config: %v", err)
	}
}

// TestSwitchingPolicyClosesTheManager switches a live channel to another
// policy: the old policy must close its manager (it leaves the registry
// and its trace ends with manager_close), and the new one must work.
func TestSwitchingPolicyClosesTheManager(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	state := e2e.AddrState(e2e.Addrs(bs)...)
	cl := e2e.Dial(t, rrConfig, state, e2e.Options{})
	cl.WaitServed(e2e.Addrs(bs)...)
	var old uint64
	for _, m := range subconn.Managers() {
		if m.Target() == cl.Target {
			old = m.ID()
		}
	}
	if old == 0 {
		t.Fatal("the policy's manager is not in the registry")
	}
	state.ServiceConfig = cl.R.CC().ParseServiceConfig(`{"loadBalancingConfig":[{"leakproof_pick_first":{}}]}`)
	cl.R.UpdateState(state)
	cl.Trace.WaitFor(t, "the old manager closing", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindManagerClose && e.Manager == old {
				return true
			}
		}
		return false
	})
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		found := false
		for _, m := range subconn.Managers() {
			found = found || m.ID() == old
		}
		if !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old manager is still registered after the switch")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := cl.EchoOK(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl.CC.Close()
	rep := cl.Trace.CheckClean(t)
	if rep.Subchannels < 3 {
		t.Fatalf("expected subchannels from both policies, got %d", rep.Subchannels)
	}
}

func Example() {
	b, err := testbackend.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	cc, err := grpc.NewClient("passthrough:///"+b.Addr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(subconn.Dialer(nil)), // exact socket ownership and bounded drain
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_round_robin":{}}]}`),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.GetMessage())
	// Output: hello
}

// TestCoalescePickersOnARealChannel: with coalescePickers, grpc's channel
// (which keeps the last picker it got and blocks picks until the next)
// spreads RPCs over every backend although endpoints turning READY send no
// picker of their own, stops picking a backend that goes away, and picks it
// again when it is back, with no RPC failing while another backend serves.
func TestCoalescePickersOnARealChannel(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	cl := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, `{"coalescePickers":true}`), e2e.AddrState(a, b, c), e2e.Options{})
	cl.WaitServed(a, b, c)

	bs[1].Stop()
	e2e.WaitSockets(t, b, 0, e2e.LongTimeout)
	ok, failed := goawayLoad(cl.CC, 300*time.Millisecond, 4)
	if failed != 0 || ok == 0 {
		t.Errorf("with %s down: %d RPCs ok, %d failed; want none failed", b, ok, failed)
	}
	if err := bs[1].Restart(); err != nil {
		t.Fatal(err)
	}
	cl.WaitServed(a, b, c)
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}
