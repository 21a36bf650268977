package xdse2e_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/stats"
)

// tree is one way a control plane puts leakproof into a cluster.
type tree struct {
	name   string
	policy xdsplane.Policy
	// underLocality: the manager runs below weighted_target, one per
	// locality, so its metrics carry grpc.lb.locality.
	underLocality bool
}

// trees returns the three ways, each with the given drain timeout:
// leakproof_round_robin by TypedStruct alone (one manager per priority, no
// locality weights), as the endpoint-picking policy of WrrLocality (one
// manager per locality), and leakproof_guard over grpc's
// xds_wrr_locality_experimental over round_robin (one manager per
// priority, locality weights).
func trees(drain string) []tree {
	rr := fmt.Sprintf(`{"drainTimeout":%q}`, drain)
	return []tree{
		{name: "typed_struct", policy: xdsplane.Policy{Name: roundrobin.Name, Config: rr}},
		{name: "wrr_locality", policy: xdsplane.Policy{Name: roundrobin.Name, Config: rr, WrrLocality: true}, underLocality: true},
		{name: "guard", policy: xdsplane.Policy{Name: guard.Name, Config: fmt.Sprintf(
			`{"childPolicy":[{"xds_wrr_locality_experimental":{"childPolicy":[{"round_robin":{}}]}}],"drainTimeout":%q}`, drain)}},
	}
}

// metrics is a grpc stats.Handler that is also a MetricsRecorder, as grpc's
// OpenTelemetry plugin is: it sums leakproof's counters and up-down counters
// by name and every label value.
type metrics struct {
	estats.UnimplementedMetricsRecorder

	mu     sync.Mutex
	counts map[string]int64
}

func newMetrics() *metrics { return &metrics{counts: map[string]int64{}} }

func (r *metrics) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (r *metrics) HandleRPC(context.Context, stats.RPCStats)                         {}
func (r *metrics) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (r *metrics) HandleConn(context.Context, stats.ConnStats)                       {}

func (r *metrics) RecordInt64Count(h *estats.Int64CountHandle, incr int64, labels ...string) {
	r.add(h.Name, incr, labels)
}

func (r *metrics) RecordInt64UpDownCount(h *estats.Int64UpDownCountHandle, incr int64, labels ...string) {
	r.add(h.Name, incr, labels)
}

func (r *metrics) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	return func() {}
}

func (r *metrics) add(name string, incr int64, labels []string) {
	if !strings.HasPrefix(name, "leakproof.") {
		return
	}
	r.mu.Lock()
	r.counts[name+" "+strings.Join(labels, " | ")] += incr
	r.mu.Unlock()
}

// series returns every series of name with its value, keyed by its labels.
func (r *metrics) series(name string) map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for k, v := range r.counts {
		if l, ok := strings.CutPrefix(k, name+" "); ok {
			out[l] = v
		}
	}
	return out
}

// holdOn opens Hold streams until one is held by backend addr and returns
// it; the others are cancelled.
func holdOn(t *testing.T, c *client, ctx context.Context, addr string) echov1.EchoService_HoldClient {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithCancel(ctx)
		h, err := c.Echo.Hold(sctx, &echov1.HoldRequest{Label: "drain"}, grpc.WaitForReady(true))
		if err == nil {
			resp, err := h.Recv()
			if err == nil && resp.GetBackend().GetAddress() == addr {
				context.AfterFunc(ctx, cancel)
				return h
			}
		}
		cancel()
	}
	t.Fatalf("no Hold stream landed on %s", addr)
	return nil
}

// TestSocketsOwnedUnderXDS: under cluster_impl and outlier detection the
// dialer learns the owning subchannel (the manager stamps its token into the
// address it gives NewSubConn), in each of the three trees. Then: socket_open
// events for every backend; leakproof.subchannel.open_sockets equal to the
// sockets /proc shows, labelled with the cluster (and the locality below
// weighted_target); a stream held on a backend EDS removes is cut at
// drainTimeout, and the trace shows drain_timeout, socket_close, then
// destroy; a connection reset by the backend is classified as a reset, not
// unknown.
func TestSocketsOwnedUnderXDS(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	const drain = 600 * time.Millisecond
	for _, tr := range trees(drain.String()) {
		t.Run(tr.name, func(t *testing.T) {
			bs := e2e.StartBackends(t, 2)
			a, b := bs[0].Addr(), bs[1].Addr()
			srv := startServer(t)
			target := name("own-" + tr.name)
			cluster := "c-" + target
			res := func(addrs ...string) xdsplane.Resources {
				return service(t, target, xdsplane.ClusterSpec{Name: cluster, Policy: tr.policy, Localities: one(addrs...)})
			}
			v := publish(t, srv, res(a, b))
			rec := newMetrics()
			c := dial(t, srv, target, false, grpc.WithStatsHandler(rec))
			c.waitServed(a, b)
			waitAcked(t, srv, xdsplane.EndpointType, v)

			for _, addr := range []string{a, b} {
				if n := c.Trace.Count(trace.KindSocketOpen, addr); n == 0 {
					t.Errorf("no socket_open for %s in the trace:\n%s", addr, e2e.Format(c.Trace.Events()))
				}
			}
			// Under the guard, grpc's round_robin below it is one manager's
			// holder; in every tree one manager owns each backend.
			locality := ""
			if tr.underLocality {
				locality = `{region="region", zone="zone", sub_zone="z1"}`
			}
			series := strings.Join([]string{c.Target, cluster, locality}, " | ")
			onProc := e2e.Sockets(t, a) + e2e.Sockets(t, b)
			got := rec.series(subconn.MetricSocketsOpen)
			if got[series] != int64(onProc) || onProc != 2 || len(got) != 1 {
				t.Errorf("open_sockets %v, want {%s: %d} (sockets on /proc: %d, want 2)", got, series, onProc, onProc)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hold := holdOn(t, c, ctx, b)
			v = publish(t, srv, res(a))
			waitAcked(t, srv, xdsplane.EndpointType, v)
			cut := make(chan error, 1)
			go func() { _, err := hold.Recv(); cut <- err }()
			select {
			case err := <-cut:
				if err == nil {
					t.Errorf("held stream on %s ended without an error, want UNAVAILABLE at drainTimeout", b)
				}
			case <-time.After(drain + 5*time.Second):
				t.Fatalf("held stream on %s still open %v after the removal (drainTimeout %v)", b, drain+5*time.Second, drain)
			}
			e2e.WaitSockets(t, b, 0, e2e.LongTimeout)
			evs := c.Trace.WaitFor(t, "destroy of "+b, func(evs []trace.Event) bool {
				for _, e := range evs {
					if e.Kind == trace.KindDestroy && e.Key == b {
						return true
					}
				}
				return false
			})
			var order []trace.Kind
			var shutAt, drainAt time.Time
			for _, e := range evs {
				if e.Key != b {
					continue
				}
				switch e.Kind {
				case trace.KindShutdown:
					shutAt = e.Time
					order = append(order, e.Kind)
				case trace.KindDrainTimeout:
					drainAt = e.Time
					order = append(order, e.Kind)
				case trace.KindSocketClose, trace.KindDestroy:
					order = append(order, e.Kind)
				}
			}
			want := []trace.Kind{trace.KindShutdown, trace.KindDrainTimeout, trace.KindSocketClose, trace.KindDestroy}
			if fmt.Sprint(order) != fmt.Sprint(want) {
				t.Errorf("events of %s: %v, want %v:\n%s", b, order, want, e2e.Format(evs))
			}
			if d := drainAt.Sub(shutAt); d < drain || d > drain+time.Second {
				t.Errorf("drain_timeout %v after shutdown, want %v", d, drain)
			}
			t.Logf("%s: the held stream on the removed backend was cut %v after its shutdown (drainTimeout %v)", tr.name, drainAt.Sub(shutAt).Round(time.Millisecond), drain)
			onProc = e2e.Sockets(t, a) + e2e.Sockets(t, b)
			if got := rec.series(subconn.MetricSocketsOpen); got[series] != int64(onProc) || onProc != 1 {
				t.Errorf("after the removal open_sockets %v, want {%s: %d} (sockets on /proc: %d, want 1)", got, series, onProc, onProc)
			}

			// A connection the backend resets is a reset, known from the
			// owned socket (without ownership it read unknown).
			if n := bs[0].ResetConns(); n != 1 {
				t.Fatalf("reset %d connections of %s, want 1", n, a)
			}
			c.Trace.WaitFor(t, "conn_lost of "+a, func(evs []trace.Event) bool {
				for _, e := range evs {
					if e.Kind == trace.KindConnLost && e.Key == a {
						if e.Cause != trace.CauseReset {
							t.Errorf("conn_lost of %s: cause %q (%s), want %q", a, e.Cause, e.Reason, trace.CauseReset)
						}
						return true
					}
				}
				return false
			})
			lost := rec.series(subconn.MetricConnectionsLost)
			if lost[strings.Join([]string{c.Target, string(trace.CauseReset), cluster, locality}, " | ")] != 1 {
				t.Errorf("connections_lost %v, want 1 reset labelled with %s", lost, cluster)
			}
			c.waitServed(a)
			cancel()
			c.CC.Close()
			e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
			if got := rec.series(subconn.MetricSocketsOpen); got[series] != 0 {
				t.Errorf("after close open_sockets %v, want 0", got)
			}
			c.Trace.CheckClean(t)
		})
	}
}
