package benchmarks

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/leakproof/leakproof/admin"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// BenchmarkChurnWatchers is BenchmarkChurn's leakproof_round_robin at 1,000
// endpoints (10,000 with LEAKPROOF_BENCH_LARGE=1) with 0, 1 and 64 real
// WatchEvents streams open on an admin server on 127.0.0.1, each filtering
// on a target no channel has: what a watcher costs the balancer when it
// receives nothing, and what the open watchers hold in memory (watchers-B,
// with the subscriptions' buffers growing on demand up to admin.WatchBuffer).
func BenchmarkChurnWatchers(b *testing.B) {
	p := policyImpls[1]
	for _, n := range []int{1000, 10000} {
		for _, pct := range []int{10, 100} {
			for _, w := range []int{0, 1, 64} {
				b.Run(fmt.Sprintf("%v/endpoints=%d/changed=%d%%/watchers=%d", p, n, pct, w), func(b *testing.B) {
					skipLarge(b, n)
					heap0 := heapAlloc()
					stop := startWatchers(b, w)
					defer stop()
					// What the open watchers hold: subscriptions, streams,
					// handlers and pumps, server and client side.
					watchersHeap := heapAlloc() - heap0
					benchChurn(b, p, p.cfg, n, pct)
					b.ReportMetric(float64(watchersHeap), "watchers-B")
				})
			}
		}
	}
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// startWatchers serves the admin service on 127.0.0.1 and opens n
// WatchEvents streams whose filter matches nothing, waiting until the
// service counts them.
func startWatchers(b *testing.B, n int) (stop func()) {
	b.Helper()
	if n == 0 {
		return func() {}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer()
	admin.Register(s, admin.MaxWatchers(n))
	go s.Serve(lis)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	ac := adminv1.NewAdminServiceClient(cc)
	ctx, cancel := context.WithCancel(context.Background())
	for range n {
		if _, err := ac.WatchEvents(ctx, &adminv1.WatchEventsRequest{Target: "nothing:///matches"}); err != nil {
			b.Fatal(err)
		}
	}
	for {
		resp, err := ac.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{Target: "nothing:///matches"})
		if err != nil {
			b.Fatal(err)
		}
		if resp.GetActiveWatchers() >= uint64(n) {
			break
		}
	}
	return func() {
		cancel()
		cc.Close()
		s.Stop()
	}
}
