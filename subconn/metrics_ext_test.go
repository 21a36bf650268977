package subconn_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
)

// statsRecorder is a grpc stats.Handler that is also a MetricsRecorder: what
// grpc's OpenTelemetry plugin is to a channel. It sums counters and up-down
// counters by name and labels after the target, and counts asynchronous
// reporters registered with it.
type statsRecorder struct {
	estats.UnimplementedMetricsRecorder

	mu        sync.Mutex
	counts    map[string]int64
	reporters int
}

func (r *statsRecorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (r *statsRecorder) HandleRPC(context.Context, stats.RPCStats)                       {}
func (r *statsRecorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (r *statsRecorder) HandleConn(context.Context, stats.ConnStats) {}

func (r *statsRecorder) RecordInt64Count(h *estats.Int64CountHandle, incr int64, labels ...string) {
	r.add(h.Name, incr, labels[:len(h.Labels)])
}

func (r *statsRecorder) RecordInt64UpDownCount(h *estats.Int64UpDownCountHandle, incr int64, labels ...string) {
	r.add(h.Name, incr, labels[:len(h.Labels)])
}

func (r *statsRecorder) add(name string, incr int64, labels []string) {
	r.mu.Lock()
	r.counts[strings.Join(append([]string{name}, labels[1:]...), " ")] += incr // labels[0] is the target
	r.mu.Unlock()
}

func (r *statsRecorder) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	r.mu.Lock()
	r.reporters++
	r.mu.Unlock()
	return func() {}
}

func (r *statsRecorder) count(key string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// waitCount polls until the sum for key is want.
func (r *statsRecorder) waitCount(t *testing.T, key string, want int64) {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for r.count(key) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", key, r.count(key), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetricsReachTheChannelsRecorder(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      150 * time.Millisecond,
		MaxConnectionAgeGrace: 50 * time.Millisecond,
	}))
	rec := &statsRecorder{counts: map[string]int64{}}
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...),
		e2e.Options{DialOptions: []grpc.DialOption{grpc.WithStatsHandler(rec)}})
	c.WaitServed(e2e.Addrs(bs)...)
	if n := rec.count(subconn.MetricSubchannelsOpen); n != 2 {
		t.Fatalf("%s = %d, want 2", subconn.MetricSubchannelsOpen, n)
	}
	if n := rec.count(subconn.MetricSocketsOpen); n < 2 {
		t.Fatalf("%s = %d, want the 2 subchannels' sockets", subconn.MetricSocketsOpen, n)
	}
	deadline := time.Now().Add(e2e.LongTimeout)
	for rec.count(subconn.MetricConnectionsLost+" "+string(trace.CauseGoAway)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("connections lost to GOAWAY never counted: %v", rec.counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.CC.Close()
	// Closed: every subchannel destroyed and every socket closed reads 0,
	// and nothing was left registered with grpc.
	rec.waitCount(t, subconn.MetricSubchannelsOpen, 0)
	rec.waitCount(t, subconn.MetricSocketsOpen, 0)
	rec.mu.Lock()
	if rec.reporters != 0 {
		t.Errorf("%d asynchronous reporters registered, want none", rec.reporters)
	}
	rec.mu.Unlock()
	c.Trace.CheckClean(t)
}

// TestSocketsGaugeFallsWhenABackendIsRemoved: the open-sockets gauge counts
// sockets down as well as up while the channel lives.
func TestSocketsGaugeFallsWhenABackendIsRemoved(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	rec := &statsRecorder{counts: map[string]int64{}}
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(a, b),
		e2e.Options{DialOptions: []grpc.DialOption{grpc.WithStatsHandler(rec)}})
	c.WaitServed(a, b)
	// The up-down counters are recorded after the manager's lock is
	// released, so they are waited for rather than read once.
	rec.waitCount(t, subconn.MetricSubchannelsOpen, 2)
	rec.waitCount(t, subconn.MetricSocketsOpen, 2)
	c.R.UpdateState(e2e.AddrState(b))
	c.Trace.WaitFor(t, "destroy of the removed backend", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindDestroy, a) == 1
	})
	rec.waitCount(t, subconn.MetricSubchannelsOpen, 1)
	rec.waitCount(t, subconn.MetricSocketsOpen, 1)
	c.CC.Close()
	c.Trace.CheckClean(t)
}
