package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/leakproof/leakproof/balancer/pickfirst" // registers leakproof_pick_first
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

const (
	longTimeout = 20 * time.Second // for a state that must come
	// drainTimeout bounds how long a removed backend's socket may stay open
	// with a stream on it; long enough to scrape the draining state.
	drainTimeout = 2 * time.Second
)

// The exported Prometheus names: what dashboards and alerts query. They are
// spelled out, not derived from the subconn constants, so that a rename
// fails here.
const (
	subchannelsOpen = "leakproof_subchannel_open"
	socketsOpen     = "leakproof_subchannel_open_sockets"
	connectionsLost = "leakproof_subchannel_connections_lost_total"
	leaks           = "leakproof_subchannel_leaks_total"

	grpcOpenConns     = "grpc_subchannel_open_connections"
	grpcDisconnects   = "grpc_subchannel_disconnections_total"
	grpcAttemptsOK    = "grpc_subchannel_connection_attempts_succeeded_total"
	grpcAttemptsError = "grpc_subchannel_connection_attempts_failed_total"
)

// families are the types the four families must have, and the label each
// is broken down by.
var families = map[string]struct {
	typ dto.MetricType
	by  string
}{
	subchannelsOpen: {dto.MetricType_GAUGE, ""},
	socketsOpen:     {dto.MetricType_GAUGE, ""},
	connectionsLost: {dto.MetricType_COUNTER, "leakproof_cause"},
	leaks:           {dto.MetricType_COUNTER, "leakproof_leak_kind"},
}

// state is what a scrape must show for one channel: for each family, its
// series by the value of one label ("" when the family has no breakdown).
// A family missing from state must have no series for the channel.
type state map[string]map[string]float64

func total(v float64) map[string]float64 { return map[string]float64{"": v} }

// scraper reads the metrics server the way Prometheus does.
type scraper struct {
	t    *testing.T
	url  string
	seen map[string]bool // every family and label name any scrape returned
}

// checked are the families a state speaks about: leakproof's four and
// grpc's subchannel metrics.
var checked = []string{subchannelsOpen, socketsOpen, connectionsLost, leaks, grpcOpenConns, grpcDisconnects, grpcAttemptsOK, grpcAttemptsError}

// by is the label a family's series are told apart by in a state.
func by(name string) string {
	if f, ok := families[name]; ok {
		return f.by
	}
	// grpc's disconnections are compared in total: grpc labels a reset
	// "connection reset" or "unknown", depending on which of its goroutines
	// sees the error first. The labels it sets deterministically are
	// checked one by one (disconnectErrors).
	return ""
}

// wait scrapes until, for each target, every checked family reads exactly
// what want says, and returns the matching scrape. It fails the test with
// every difference of the last scrape otherwise.
func (sc *scraper) wait(step string, want map[string]state) scrape {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
	defer cancel()
	var diffs []string
	var last scrape
	for {
		s, err := scrapeOnce(ctx, sc.url)
		if err != nil && ctx.Err() != nil && last != nil {
			// The deadline passed during a scrape: report what the last
			// one showed.
			sc.t.Fatalf("%s: after %v the scrape still differs:\n  %s\nleakproof's and grpc's subchannel series:\n  %s",
				step, longTimeout, strings.Join(diffs, "\n  "), strings.Join(last.lines("leakproof_", "grpc_subchannel_"), "\n  "))
		}
		if err != nil {
			sc.t.Fatalf("%s: %v", step, err)
		}
		last = s
		for name, fam := range s {
			sc.seen[name] = true
			for _, m := range fam.GetMetric() {
				for _, l := range m.GetLabel() {
					sc.seen[l.GetName()] = true
				}
			}
		}
		diffs = diffs[:0]
		for _, target := range slices.Sorted(maps.Keys(want)) {
			for _, name := range checked {
				got := s.series(name, by(name), map[string]string{"grpc_target": target})
				w := want[target][name]
				if w == nil {
					w = map[string]float64{}
				}
				if !maps.Equal(got, w) {
					diffs = append(diffs, fmt.Sprintf("%s{grpc_target=%q} by %q = %v, want %v", name, target, by(name), got, w))
				}
			}
		}
		if len(diffs) == 0 {
			return s
		}
		select {
		case <-ctx.Done():
			sc.t.Fatalf("%s: after %v the scrape still differs:\n  %s\nleakproof's and grpc's subchannel series:\n  %s",
				step, longTimeout, strings.Join(diffs, "\n  "), strings.Join(s.lines("leakproof_", "grpc_subchannel_"), "\n  "))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// disconnectErrors fails the test unless grpc counted want disconnections
// of target with grpc.disconnect_error label.
func disconnectErrors(t *testing.T, s scrape, target, label string, want float64) {
	t.Helper()
	got := s.series(grpcDisconnects, "grpc_disconnect_error", map[string]string{"grpc_target": target})
	if got[label] != want {
		t.Errorf("%s{grpc_target=%q} by grpc_disconnect_error = %v, want %q: %g", grpcDisconnects, target, got, label, want)
	}
}

func startBackend(t *testing.T, opts ...testbackend.Option) *testbackend.Backend {
	t.Helper()
	b, err := testbackend.Start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// dial connects a channel with the metrics plugin to the resolver's
// endpoints through policy.
func dial(t *testing.T, ms *metricsServer, r *manual.Resolver, policy string, addrs ...string) (*grpc.ClientConn, string) {
	t.Helper()
	r.InitialState(endpoints(addrs...))
	target := r.Scheme() + ":///echo"
	cc, err := grpc.NewClient(target,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+policy+`":{"drainTimeout":"`+drainTimeout.String()+`"}}]}`),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		metricsDialOption(ms.MeterProvider),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cc, target
}

func endpoints(addrs ...string) resolver.State {
	var s resolver.State
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}})
	}
	return s
}

// TestScrapeThroughFaults runs two channels through a GOAWAY, a TCP reset, a
// removed backend whose stream never ends, and Close, and checks after each
// step that /metrics, read over HTTP from the Prometheus exporter, shows
// exactly the subchannels, sockets, lost connections and leaks there are,
// beside grpc's own subchannel metrics.
func TestScrapeThroughFaults(t *testing.T) {
	a := startBackend(t, testbackend.Name("a"))
	b := startBackend(t, testbackend.Name("b"))
	// One GOAWAY per connection, MaxConnectionAge after it opened. The
	// pick_first channel does not reconnect until its next RPC, so it sees
	// exactly one.
	g := startBackend(t, testbackend.Name("goaway"), testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      300 * time.Millisecond,
		MaxConnectionAgeGrace: longTimeout,
	}))
	t.Cleanup(leaktest.Check(t, leaktest.Backends(a.Addr(), b.Addr(), g.Addr()))) // runs before the backends close
	ms, err := startMetricsServer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
		defer cancel()
		if err := ms.Close(ctx); err != nil {
			t.Errorf("closing the metrics server: %v", err)
		}
	})
	sc := &scraper{t: t, url: ms.URL, seen: map[string]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), longTimeout)
	defer cancel()

	// A round_robin channel to a and b.
	rrRes := manual.NewBuilderWithScheme("rr")
	rr, rrTarget := dial(t, ms, rrRes, "leakproof_round_robin", a.Addr(), b.Addr())
	defer rr.Close()
	rrEcho := echov1.NewEchoServiceClient(rr)
	if err := waitServed(ctx, rrEcho, a, b); err != nil {
		t.Fatal(err)
	}
	rrState := state{
		subchannelsOpen: total(2),
		socketsOpen:     total(2),
		grpcOpenConns:   total(2),
		grpcAttemptsOK:  total(2),
	}
	sc.wait("connected to a and b", map[string]state{rrTarget: rrState})

	// A TCP RST on b's connection: lost with cause reset, and reconnected.
	if n := b.ResetConns(); n != 1 {
		t.Fatalf("reset %d connections on b, want 1", n)
	}
	rrState[connectionsLost] = map[string]float64{string(trace.CauseReset): 1}
	rrState[grpcDisconnects] = total(1)
	rrState[grpcAttemptsOK] = total(3)
	sc.wait("b's connection reset", map[string]state{rrTarget: rrState})

	// A pick_first channel to g: one RPC, then a GOAWAY at MaxConnectionAge.
	// The subchannel stays, IDLE, without a socket.
	pfRes := manual.NewBuilderWithScheme("pf")
	pf, pfTarget := dial(t, ms, pfRes, "leakproof_pick_first", g.Addr())
	defer pf.Close()
	if err := waitServed(ctx, echov1.NewEchoServiceClient(pf), g); err != nil {
		t.Fatal(err)
	}
	pfState := state{
		subchannelsOpen: total(1),
		socketsOpen:     total(0),
		connectionsLost: {string(trace.CauseGoAway): 1},
		grpcOpenConns:   total(0),
		grpcDisconnects: total(1),
		grpcAttemptsOK:  total(1),
	}
	s := sc.wait("GOAWAY from g", map[string]state{rrTarget: rrState, pfTarget: pfState})
	disconnectErrors(t, s, pfTarget, "GOAWAY NO_ERROR", 1)

	// A stream that never ends on one of rr's backends, and that backend
	// removed: its subchannel is shut down but its socket stays open for the
	// stream (grpc no longer counts it), until the drain timeout
	// force-closes it: a leak caught.
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	hold, err := rrEcho.Hold(hctx, &echov1.HoldRequest{Label: "never ends"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := hold.Recv()
	if err != nil {
		t.Fatal(err)
	}
	held, kept := a, b
	if first.GetBackend().GetName() == b.Name() {
		held, kept = b, a
	}
	rrRes.UpdateState(endpoints(kept.Addr()))
	rrState[grpcOpenConns] = total(1)
	rrState[grpcDisconnects] = total(2)
	s = sc.wait(held.Name()+" removed, its stream draining", map[string]state{rrTarget: rrState, pfTarget: pfState})
	disconnectErrors(t, s, rrTarget, "subchannel shutdown", 1)
	rrState[subchannelsOpen] = total(1)
	rrState[socketsOpen] = total(1)
	rrState[leaks] = map[string]float64{"drain_timeout": 1}
	s = sc.wait(held.Name()+"'s socket force-closed after the drain timeout", map[string]state{rrTarget: rrState, pfTarget: pfState})
	if _, err := hold.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("the held stream after the drain timeout: %v, want UNAVAILABLE", err)
	}
	for name, f := range families {
		if got := s[name].GetType(); got != f.typ {
			t.Errorf("%s is a %v, want a %v", name, got, f.typ)
		}
		if s[name].GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	// Close: every subchannel destroyed and every socket closed, so each
	// channel's gauges read 0, as grpc's open connections do; the counters
	// keep their totals.
	rr.Close()
	pf.Close()
	for _, st := range []state{rrState, pfState} {
		st[subchannelsOpen] = total(0)
		st[socketsOpen] = total(0)
		st[grpcOpenConns] = total(0)
	}
	rrState[grpcDisconnects] = total(3) // kept was READY
	s = sc.wait("both channels closed", map[string]state{rrTarget: rrState, pfTarget: pfState})
	disconnectErrors(t, s, rrTarget, "subchannel shutdown", 2)
	disconnectErrors(t, s, pfTarget, "GOAWAY NO_ERROR", 1) // pf was IDLE: no disconnection at Close

	// The dashboard and the documented queries use only what was exported.
	checkQueries(t, sc.seen)
}
