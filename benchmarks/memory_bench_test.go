package benchmarks

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
)

// heapAfterGC returns the live heap once garbage is collected.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

var memorySizes = []int{1000, 10000}

// The runtime and grpc keep some memory for reuse and never give it back:
// a goroutine's descriptor (~400 B), channelz's table of subchannels. The
// first op of a benchmark would pay for these and the ops after it would
// not, so each memory benchmark runs one op unmeasured first (warm): before
// it, whichever implementation ran first carried ~400 B per endpoint more
// (grpc's, in every earlier run), seen in a heap profile under runtime.malg
// and channelz's addSubChannel.

// settledHeap returns the live heap once it has stopped shrinking: what the
// op before left behind (a closed channel's addrConns end on their own
// goroutines) must be gone before a measurement starts, or the delta reads
// low.
func settledHeap() uint64 {
	h := heapAfterGC()
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		next := heapAfterGC()
		if next+16<<10 > h { // shrank by less than 16 KiB
			return next
		}
		h = next
	}
	return h
}

// heapProfile writes the heap profile as of the last GC to
// $LEAKPROOF_BENCH_HEAPPROFILE/<benchmark>-<stage>.pprof when that variable
// names a directory; run with -memprofilerate 1 so that every allocation is
// sampled. Compare a benchmark's "after" with its "before"
// (go tool pprof -sample_index inuse_space -diff_base before after) to see
// what one op keeps live, by function.
func heapProfile(b *testing.B, stage string) {
	dir := os.Getenv("LEAKPROOF_BENCH_HEAPPROFILE")
	if dir == "" {
		return
	}
	name := strings.NewReplacer("/", "_", "=", "-").Replace(b.Name())
	f, err := os.Create(filepath.Join(dir, name+"-"+stage+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMemorySubchannel measures the live heap per subchannel on a real
// grpc.ClientConn: N subchannels created (never connected) by grpc's own
// balancer.ClientConn — grpc's addrConn, its balancer wrapper and channelz
// entry — against the same N acquired through a subconn.Manager, which adds
// its record, the holder's handle, the key index and the trace (the default
// ring of 512 events, or none). One op creates the N subchannels; the heap
// is read after two GCs before and after, one op unmeasured first (warm).
// Reported: B/subchannel.
func BenchmarkMemorySubchannel(b *testing.B) {
	off := 0
	modes := []struct {
		impl    string
		managed bool
		ring    *int
	}{
		{"grpc", false, nil},
		{"leakproof", true, nil},
		{"leakproof_trace_off", true, &off},
	}
	for _, n := range memorySizes {
		for _, m := range modes {
			b.Run(fmt.Sprintf("impl=%s/subchannels=%d", m.impl, n), func(b *testing.B) {
				var perSC float64
				scs := make([]balancer.SubConn, n)
				b.StopTimer()
				for i := range b.N + 1 {
					warm := i == 0
					c := dial(b, directConfigJSON(m.managed, m.ring), e2e.AddrState())
					l := directOf(b, c)
					before := settledHeap()
					if !warm {
						heapProfile(b, "before")
						b.StartTimer()
					}
					for i := range scs {
						sc, _, err := l.add(addr(i), nil)
						if err != nil {
							b.Fatal(err)
						}
						scs[i] = sc
					}
					b.StopTimer()
					after := heapAfterGC()
					if !warm {
						heapProfile(b, "after")
						perSC += (float64(after) - float64(before)) / float64(n)
					}
					for i, sc := range scs {
						sc.Shutdown() // a leakproof handle's Shutdown releases it
						scs[i] = nil
					}
					c.cc.Close()
				}
				b.ReportMetric(perSC/float64(b.N), "B/subchannel")
			})
		}
	}
}

// blockDialer is a dialer whose dials never complete: every subchannel
// stays CONNECTING, with no socket, until the channel closes.
type blockDialer struct{ inflight atomic.Int64 }

func (d *blockDialer) dial(ctx context.Context, _ string) (net.Conn, error) {
	d.inflight.Add(1)
	defer d.inflight.Add(-1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// BenchmarkMemoryPolicy measures the live heap per endpoint of a whole
// policy on a real grpc.ClientConn: grpc-go's round_robin against
// leakproof's (with subconn.Dialer), N single-address endpoints, every
// subchannel connecting through a dialer that never completes (no socket is
// opened; nothing is reachable). It counts everything each policy keeps per
// endpoint: endpointsharding's child, its pick_first, the addrConn, and for
// leakproof the manager's record, handle and trace; one op unmeasured first
// (warm). Reported: B/endpoint;
// ns/op is the time to reach N dials in flight from NewClient.
func BenchmarkMemoryPolicy(b *testing.B) {
	for _, n := range memorySizes {
		for _, ci := range []channelImpl{{"grpc", "round_robin", false}, {"leakproof", "leakproof_round_robin", true}} {
			b.Run(fmt.Sprintf("policy=round_robin/impl=%s/endpoints=%d", ci.impl, n), func(b *testing.B) {
				addrs := make([]string, n)
				for i := range addrs {
					addrs[i] = addr(i)
				}
				state := e2e.EndpointState(endpointsOf(addrs)...)
				var perEP float64
				b.StopTimer()
				for i := range b.N + 1 {
					warm := i == 0
					d := &blockDialer{}
					opt := grpc.WithContextDialer(d.dial)
					if ci.dialer {
						opt = grpc.WithContextDialer(subconn.Dialer(d.dial))
					}
					before := settledHeap()
					if !warm {
						heapProfile(b, "before")
						b.StartTimer()
					}
					c := dial(b, e2e.ServiceConfig(ci.policy, ""), state, opt)
					deadline := time.Now().Add(15 * time.Second)
					for d.inflight.Load() < int64(n) {
						if time.Now().After(deadline) {
							b.Fatalf("%d of %d dials in flight after 15s", d.inflight.Load(), n)
						}
						time.Sleep(time.Millisecond)
					}
					b.StopTimer()
					after := heapAfterGC()
					if !warm {
						heapProfile(b, "after")
						perEP += (float64(after) - float64(before)) / float64(n)
					}
					c.cc.Close()
					for d.inflight.Load() > 0 {
						time.Sleep(time.Millisecond)
					}
				}
				b.ReportMetric(perEP/float64(b.N), "B/endpoint")
			})
		}
	}
}
