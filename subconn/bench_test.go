package subconn

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// benchCC is the smallest balancer.ClientConn the manager can run on, for
// benchmarks of the manager alone: it keeps nothing per SubConn (fakeCC
// keeps every SubConn it made, which a long benchmark would pile up), only
// counts NewSubConn and Shutdown calls so that a benchmark can check they
// balance.
type benchCC struct {
	balancer.ClientConn // nil: a call that is not faked panics

	created, shutdowns atomic.Int64
}

func (c *benchCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	c.created.Add(1)
	return &benchSC{cc: c, listener: opts.StateListener}, nil
}

func (c *benchCC) UpdateState(balancer.State) {}

func (c *benchCC) Target() string { return "bench:///manager" }

func (c *benchCC) MetricsRecorder() estats.MetricsRecorder { return nil }

// check fails b unless every SubConn created was shut down once.
func (c *benchCC) check(b *testing.B) {
	if n, s := c.created.Load(), c.shutdowns.Load(); n != s {
		b.Errorf("%d SubConns created, %d shut down", n, s)
	}
}

type benchSC struct {
	balancer.SubConn // nil

	cc       *benchCC
	listener func(balancer.SubConnState)
	shut     atomic.Bool
}

func (sc *benchSC) Connect() {}

func (sc *benchSC) Shutdown() {
	if sc.shut.CompareAndSwap(false, true) {
		sc.cc.shutdowns.Add(1)
	}
}

// benchTraceModes are the trace set-ups: no events at all (ring 0, no
// subscriber), the default ring, the ring with a subscriber draining every
// event, and the ring with 64 subscribers whose filters match nothing (an
// admin service's watchers of other channels).
var benchTraceModes = []string{"off", "ring", "sub", "sub64"}

// benchManager returns a manager on a benchCC for a trace mode, and the
// function that closes it, stops the subscriber and checks the counts.
func benchManager(b *testing.B, mode string) (*Manager, func()) {
	ring := DefaultTraceRing
	if mode == "off" {
		ring = 0
	}
	stopSub := func() {}
	if mode == "sub64" {
		subs := make([]*trace.Subscription, 64)
		for i := range subs {
			subs[i] = trace.Subscribe(16, func(e *trace.Event) bool { return e.Manager == 0 })
		}
		stopSub = func() {
			for _, s := range subs {
				s.Close()
			}
		}
	}
	if mode == "sub" {
		sub := trace.Subscribe(1<<16, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range sub.Events() {
			}
		}()
		stopSub = func() {
			sub.Close()
			<-done
			if sub.Dropped() {
				b.Error("trace subscriber fell behind and was dropped")
			}
		}
	}
	cc := &benchCC{}
	m := NewManager(cc, WithTraceRing(ring))
	return m, func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
		stopSub()
		cc.check(b)
	}
}

// BenchmarkAcquireRelease times one Acquire and one Release of a key that
// another holder keeps alive (no SubConn is created or shut down), with the
// trace off, in the ring, and streamed to a subscriber. With listener=yes
// the subchannel is READY and the holder has a state listener, as every
// holder of the leakproof policies does: Acquire then queues READY for it
// and Release a final SHUTDOWN, delivered on the manager's own goroutine.
func BenchmarkAcquireRelease(b *testing.B) {
	for _, listener := range []bool{false, true} {
		for _, mode := range benchTraceModes {
			name := fmt.Sprintf("listener=%s/trace=%s", map[bool]string{false: "no", true: "yes"}[listener], mode)
			b.Run(name, func(b *testing.B) {
				m, done := benchManager(b, mode)
				defer done()
				a := resolver.Address{Addr: "127.0.0.1:20000"}
				keep, err := m.Acquire(a, "keeper")
				if err != nil {
					b.Fatal(err)
				}
				var opts []AcquireOption
				if listener {
					keep.Unwrap().(*benchSC).listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
					var delivered atomic.Int64
					opts = append(opts, WithStateListener(func(balancer.SubConnState) { delivered.Add(1) }))
				}
				b.ReportAllocs()
				for b.Loop() {
					h, err := m.Acquire(a, "bench", opts...)
					if err != nil {
						b.Fatal(err)
					}
					if err := h.Release("bench"); err != nil {
						b.Fatal(err)
					}
				}
				keep.Release("keeper")
			})
		}
	}
}

// syncLists returns two lists of n addresses that differ in pct percent of
// them, spread evenly, with a few duplicates as resolvers send them.
func syncLists(n, pct int) [2][]resolver.Address {
	var lists [2][]resolver.Address
	for g := range lists {
		l := make([]resolver.Address, n)
		for i := range l {
			port := 20000 + i
			if g == 1 && pct > 0 && i%(100/pct) == 33%(100/pct) {
				port = 40000 + i
			}
			l[i] = resolver.Address{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
		}
		for i := 50; i < n; i += 100 {
			l[i] = l[i-1] // a duplicate: Sync counts it once
		}
		lists[g] = l
	}
	return lists
}

// BenchmarkSetSync times Set.Sync of 1,000 addresses alternating between
// two lists that differ in 0%, 1%, 10% or 100% of them, with the trace
// off, in the ring, and streamed to a subscriber. The cost should be one
// lookup per address plus one Acquire or Release per change.
func BenchmarkSetSync(b *testing.B) {
	for _, pct := range []int{0, 1, 10, 100} {
		for _, mode := range benchTraceModes {
			b.Run(fmt.Sprintf("addrs=1000/changed=%d%%/trace=%s", pct, mode), func(b *testing.B) {
				m, done := benchManager(b, mode)
				defer done()
				lists := syncLists(1000, pct)
				s := m.NewSet("bench", nil)
				if _, _, err := s.Sync(lists[0]); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					if _, _, err := s.Sync(lists[i%2]); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// benchRecorder is a MetricsRecorder that only counts what it is given: the
// cost of the manager's metrics without an exporter behind them.
type benchRecorder struct {
	estats.UnimplementedMetricsRecorder
	n atomic.Int64
}

func (r *benchRecorder) RecordInt64UpDownCount(_ *estats.Int64UpDownCountHandle, v int64, _ ...string) {
	r.n.Add(v)
}

func (r *benchRecorder) RecordInt64Count(_ *estats.Int64CountHandle, v int64, _ ...string) {
	r.n.Add(v)
}

func (r *benchRecorder) RecordInt64Gauge(_ *estats.Int64GaugeHandle, v int64, _ ...string) {
	r.n.Add(v)
}

func (r *benchRecorder) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	return func() {}
}

// meteredBenchCC is a benchCC whose channel has a metrics recorder.
type meteredBenchCC struct {
	*benchCC
	rec *benchRecorder
}

func (c meteredBenchCC) MetricsRecorder() estats.MetricsRecorder { return c.rec }

// benchMetricsManager returns a manager with the trace off, on a channel
// with or without a metrics recorder, and the function that closes it.
func benchMetricsManager(b *testing.B, metrics bool) (*Manager, func()) {
	cc := &benchCC{}
	var bcc balancer.ClientConn = cc
	if metrics {
		bcc = meteredBenchCC{benchCC: cc, rec: &benchRecorder{}}
	}
	m := NewManager(bcc, WithTraceRing(0))
	return m, func() {
		if err := m.Close(); err != nil {
			b.Error(err)
		}
		cc.check(b)
	}
}

// BenchmarkCreateShutdown times the Acquire of a key nobody holds (a
// SubConn created) and its Release (shut down and destroyed): the path
// that moves the open-subchannels metric, with and without a recorder.
func BenchmarkCreateShutdown(b *testing.B) {
	for _, metrics := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", metrics), func(b *testing.B) {
			m, done := benchMetricsManager(b, metrics)
			defer done()
			a := resolver.Address{Addr: "127.0.0.1:20000"}
			b.ReportAllocs()
			for b.Loop() {
				h, err := m.Acquire(a, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := h.Release("bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSocketOpenClose times the dialer's bookkeeping of one socket
// (open, then closed by the client) on a held subchannel: the path that
// moves the open-sockets metric, with and without a recorder. The socket is
// one end of a net.Pipe: no system call is timed.
func BenchmarkSocketOpenClose(b *testing.B) {
	for _, metrics := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", metrics), func(b *testing.B) {
			m, done := benchMetricsManager(b, metrics)
			defer done()
			h, err := m.Acquire(resolver.Address{Addr: "127.0.0.1:20000"}, "bench")
			if err != nil {
				b.Fatal(err)
			}
			r := h.rec
			b.ReportAllocs()
			for b.Loop() {
				client, server := net.Pipe()
				if !r.dialStart() {
					b.Fatal("dialStart refused on a held subchannel")
				}
				c, err := r.dialDone(client, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
				server.Close()
			}
			h.Release("bench")
		})
	}
}
