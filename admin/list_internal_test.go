package admin

import (
	"context"
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
)

// A page of ListSubchannels describes the subchannels it returns, not every
// subchannel of the manager: a page of 5 out of 300 allocates a small
// fraction of what the whole list does.
func TestListSubchannelsCopiesOnlyItsPage(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	// Ports nothing listens on: the subchannels exist without sockets, so
	// nothing is joined with channelz and only the listing allocates.
	const n = 300
	var addrs []string
	var liss []net.Listener
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, lis.Addr().String())
		liss = append(liss, lis) // open until all are taken: n distinct ports
	}
	for _, lis := range liss {
		lis.Close()
	}
	// A minute of backoff after the first refused attempt: AllocsPerRun
	// counts every goroutine's allocations, and 300 subchannels retrying
	// every second allocated more than the page (633 against 39, once).
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(addrs...), e2e.Options{DialOptions: []grpc.DialOption{
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: time.Minute, Multiplier: 1, MaxDelay: time.Minute}}),
	}})
	s := newService(nil)
	ctx := context.Background()
	var all *adminv1.ListSubchannelsResponse
	for deadline := time.Now().Add(e2e.LongTimeout); ; time.Sleep(10 * time.Millisecond) {
		var err error
		all, err = s.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{Target: c.Target})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.GetSubchannels()) == n && allInState(all, "TRANSIENT_FAILURE") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subchannels listed, want %d, all in TRANSIENT_FAILURE", len(all.GetSubchannels()), n)
		}
	}
	mid := &adminv1.ListSubchannelsRequest{Target: c.Target, PageSize: 5,
		PageToken: pageTokenPrefix + strconv.FormatUint(all.GetSubchannels()[n/2].GetId(), 10)}
	// The fewest of three measurements: a quiet moment of the process.
	allocs := func(f func()) float64 {
		least := math.Inf(1)
		for range 3 {
			least = min(least, testing.AllocsPerRun(5, f))
		}
		return least
	}
	page := allocs(func() {
		if resp, err := s.ListSubchannels(ctx, mid); err != nil || len(resp.GetSubchannels()) != 5 {
			t.Fatalf("a page of 5: %d subchannels, %v", len(resp.GetSubchannels()), err)
		}
	})
	whole := allocs(func() {
		s.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{Target: c.Target})
	})
	t.Logf("allocations: a page of 5 %v, all %d %v", page, n, whole)
	if page*10 > whole {
		t.Fatalf("a page of 5 of %d subchannels allocates %v times, the whole list %v: the page pays for the rest", n, page, whole)
	}
}

// allInState reports whether every subchannel of resp is in state.
func allInState(resp *adminv1.ListSubchannelsResponse, state string) bool {
	for _, sc := range resp.GetSubchannels() {
		if sc.GetState() != state {
			return false
		}
	}
	return true
}
