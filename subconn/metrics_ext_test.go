package subconn_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
)

// statsRecorder is a grpc stats.Handler that is also a MetricsRecorder: what
// grpc's OpenTelemetry plugin is to a channel.
type statsRecorder struct {
	estats.UnimplementedMetricsRecorder

	mu        sync.Mutex
	counts    map[string]int64
	reporters []estats.AsyncMetricReporter
}

func (r *statsRecorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (r *statsRecorder) HandleRPC(context.Context, stats.RPCStats)                       {}
func (r *statsRecorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (r *statsRecorder) HandleConn(context.Context, stats.ConnStats) {}

func (r *statsRecorder) RecordInt64Count(h *estats.Int64CountHandle, incr int64, labels ...string) {
	r.mu.Lock()
	r.counts[h.Name+" "+strings.Join(labels[1:], " ")] += incr // labels[0] is the target
	r.mu.Unlock()
}

func (r *statsRecorder) RegisterAsyncReporter(rep estats.AsyncMetricReporter, _ ...estats.AsyncMetric) func() {
	r.mu.Lock()
	r.reporters = append(r.reporters, rep)
	r.mu.Unlock()
	return func() {}
}

func (r *statsRecorder) count(key string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

type gauges map[string]int64

func (g gauges) RecordInt64AsyncGauge(h *estats.Int64AsyncGaugeHandle, v int64, _ ...string) {
	g[h.Name] += v
}

func (r *statsRecorder) gauges() gauges {
	r.mu.Lock()
	reps := append([]estats.AsyncMetricReporter(nil), r.reporters...)
	r.mu.Unlock()
	g := gauges{}
	for _, rep := range reps {
		rep.Report(g)
	}
	return g
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
	if g := rec.gauges(); g[subconn.MetricSubchannelsOpen] != 2 || g[subconn.MetricSocketsOpen] < 2 {
		t.Fatalf("gauges = %v, want 2 subchannels and their sockets", g)
	}
	deadline := time.Now().Add(e2e.LongTimeout)
	for rec.count(subconn.MetricConnectionsLost+" "+string(subconn.CauseGoAway)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("connections lost to GOAWAY never counted: %v", rec.counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}
