package pickfirst_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

var pfConfig = e2e.ServiceConfig(pickfirst.Name, "")

func TestDuplicatesOpenOneSocket(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	for name, state := range map[string]resolver.State{
		"addresses": e2e.AddrState(a, a, b, b, c),
		"endpoints": e2e.EndpointState([]string{a}, []string{a, b}, []string{b, c}),
	} {
		t.Run(name, func(t *testing.T) {
			cl := e2e.Dial(t, pfConfig, state, e2e.Options{})
			cl.WaitServed(a)
			max := e2e.MaxSockets(t, 300*time.Millisecond, a, b, c)
			if max[a] != 1 || max[b] != 0 || max[c] != 0 {
				t.Fatalf("sockets while open: %v, want exactly one, to the first address", max)
			}
			cl.CC.Close()
			cl.Trace.CheckClean(t)
			e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
		})
	}
}

func TestAddressesInOrderAndFailover(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	cl := e2e.Dial(t, pfConfig, e2e.AddrState(a, b), e2e.Options{})
	for range 10 {
		addr, err := cl.EchoOK(context.Background())
		if err != nil || addr != a {
			t.Fatalf("served by %q (%v), want the first address %s", addr, err, a)
		}
	}
	bs[0].Stop()
	cl.WaitServed(b)
	if n := e2e.Sockets(t, a); n != 0 {
		t.Fatalf("%d sockets to the stopped first address", n)
	}
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}

// TestIdleAfterGoAwayReconnectsTheSameSubchannel: after a GOAWAY the channel
// reports IDLE, and the next RPC reconnects the same subchannel.
func TestIdleAfterGoAwayReconnectsTheSameSubchannel(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      200 * time.Millisecond,
		MaxConnectionAgeGrace: 50 * time.Millisecond,
	}))
	a := bs[0].Addr()
	cl := e2e.Dial(t, pfConfig, e2e.AddrState(a), e2e.Options{})
	cl.WaitServed(a)
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	for s := cl.CC.GetState(); s != connectivity.Idle; s = cl.CC.GetState() {
		if !cl.CC.WaitForStateChange(ctx, s) {
			t.Fatalf("channel never went IDLE after the GOAWAY (stuck in %v)", s)
		}
	}
	cl.WaitServed(a)
	// The new connection ages out after 200 ms as well, so by now the
	// channel may be IDLE or CONNECTING again; it must not have failed.
	if st := cl.CC.GetState(); st == connectivity.TransientFailure || st == connectivity.Shutdown {
		t.Fatalf("state after the RPC: %v", st)
	}
	ev := cl.Trace.Events()
	creates, goaways := 0, 0
	for _, e := range ev {
		switch e.Kind {
		case trace.KindCreate:
			creates++
		case trace.KindGoAway:
			goaways++
		}
	}
	if creates != 1 || goaways < 1 {
		t.Fatalf("%d creates and %d GOAWAYs, want 1 subchannel reconnected after the GOAWAY\n%s", creates, goaways, e2e.Format(ev))
	}
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}

// TestStickyTransientFailure: with every backend down the channel stays in
// TRANSIENT_FAILURE (fail-fast RPCs fail) until one comes back.
func TestStickyTransientFailure(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	a := bs[0].Addr()
	bs[0].Stop()
	cl := e2e.Dial(t, pfConfig, e2e.AddrState(a), e2e.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	for s := cl.CC.GetState(); s != connectivity.TransientFailure; s = cl.CC.GetState() {
		if !cl.CC.WaitForStateChange(ctx, s) {
			t.Fatal("never reached TRANSIENT_FAILURE")
		}
	}
	// Backoff cycles through IDLE and CONNECTING underneath; the channel
	// stays in TRANSIENT_FAILURE (gRFC A62).
	end := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(end) {
		if s := cl.CC.GetState(); s != connectivity.TransientFailure {
			t.Fatalf("channel left TRANSIENT_FAILURE for %v with the backend still down", s)
		}
		_, err := cl.Echo.Echo(ctx, &echov1.EchoRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("fail-fast RPC: %v, want UNAVAILABLE", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := bs[0].Restart(); err != nil {
		t.Fatal(err)
	}
	cl.WaitServed(a)
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}

func TestRemovalClosesTheSocket(t *testing.T) {
	for _, o := range []e2e.Options{{}, {NoDialer: true}} {
		t.Run(fmt.Sprintf("nodialer=%v", o.NoDialer), func(t *testing.T) {
			t.Cleanup(leaktest.Check(t))
			bs := e2e.StartBackends(t, 2)
			a, b := bs[0].Addr(), bs[1].Addr()
			cl := e2e.Dial(t, pfConfig, e2e.AddrState(a), o)
			cl.WaitServed(a)
			cl.R.UpdateState(e2e.AddrState(b))
			cl.WaitServed(b)
			e2e.WaitSockets(t, a, 0, 2*time.Second)
			if n := e2e.Sockets(t, b); n != 1 {
				t.Fatalf("%d sockets to the new address, want 1", n)
			}
		})
	}
}

func TestEmptyListAndResolverErrors(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	cl := e2e.Dial(t, pfConfig, resolver.State{}, e2e.Options{})
	if err := cl.R.CC().UpdateState(resolver.State{}); !errors.Is(err, balancer.ErrBadResolverState) {
		t.Fatalf("empty update: %v, want ErrBadResolverState", err)
	}
	cl.R.CC().ReportError(errors.New("dns is down"))
	cl.WaitUnavailable("name resolver error: dns is down")
}

func TestParseConfig(t *testing.T) {
	p := balancer.Get(pickfirst.Name).(balancer.ConfigParser)
	for _, tc := range []struct {
		js      string
		wantErr string
	}{
		{`{}`, ""},
		{`null`, ""},
		{`{"shuffleAddressList":true,"drainTimeout":"1m","traceRingSize":64}`, ""},
		{`{"shuffleAddressList":"yes"}`, "invalid config"},
		{`{"coalescePickers":true}`, "coalescePickers is a round_robin option"},
		{`{"drainTimeout":5}`, "invalid config"},
		{`{"drainTimeout":"25h"}`, "at most"},
		{`{"unknown":true}`, "unknown field"},
	} {
		_, err := p.ParseConfig(json.RawMessage(tc.js))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseConfig(%s) = %v", tc.js, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), pickfirst.Name)):
			t.Errorf("ParseConfig(%s) = %v, want an error naming %s and %q", tc.js, err, pickfirst.Name, tc.wantErr)
		}
	}
}

// TestShuffleAddressListSpreadsChannels: with shuffleAddressList, channels
// to the same list pick different first addresses.
func TestShuffleAddressListSpreadsChannels(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	served := map[string]int{}
	for range 12 {
		cl := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, `{"shuffleAddressList":true}`), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
		addr, err := cl.EchoOK(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		served[addr]++
		cl.CC.Close()
		cl.Trace.Close()
	}
	// 12 shuffles all picking the same first of 3 addresses: (1/3)^11.
	if len(served) < 2 {
		t.Fatalf("12 shuffled channels all used %v", served)
	}
}

// TestCloseReleasesEverything: the policy's Close must close its manager
// (which leaves the registry) and every subchannel must be destroyed.
func TestCloseReleasesEverything(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	cl := e2e.Dial(t, pfConfig, e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	cl.WaitServed(bs[0].Addr())
	var id uint64
	for _, m := range subconn.Managers() {
		if m.Target() == cl.Target {
			id = m.ID()
		}
	}
	if id == 0 {
		t.Fatal("no manager registered for the channel")
	}
	cl.CC.Close()
	ev := cl.Trace.WaitFor(t, "manager_close", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindManagerClose && e.Manager == id {
				return true
			}
		}
		return false
	})
	_ = ev
	cl.Trace.CheckClean(t)
	for _, m := range subconn.Managers() {
		if m.ID() == id {
			t.Fatal("a closed manager with no subchannels is still registered")
		}
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
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_pick_first":{"drainTimeout":"10s"}}]}`),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	resp, err := echov1.NewEchoServiceClient(cc).Echo(context.Background(), &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.GetMessage())
	// Output: hello
}
