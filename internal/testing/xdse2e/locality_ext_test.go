package xdse2e_test

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/testbackend"

	v3clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3" // the documented fallback policy
	"google.golang.org/protobuf/encoding/protojson"
)

// GuardOverWrrLocality is leakproof_guard over grpc's xds_wrr_locality over
// round_robin: locality weights with one manager per priority.
const guardOverWrrLocality = `{"childPolicy":[{"xds_wrr_locality_experimental":{"childPolicy":[{"round_robin":{}}]}}],"drainTimeout":"1s"}`

// weighted is one cluster configuration measured by TestLocalityWeights.
type weighted struct {
	name     string
	policy   xdsplane.Policy
	weighted bool // it follows locality weights
	ours     bool // leakproof owns its subchannels: at most one socket per backend, a clean trace

	backends []*testbackend.Backend
	pool     []string // [0:3] rotate through z1, [3:6] through z2, two at a time
	target   string
	c        *client
}

// localities returns z1 and z2 of round i with weights w1 and w2.
func (w *weighted) localities(i int, w1, w2 uint32) []xdsplane.Locality {
	return []xdsplane.Locality{
		{Name: "z1", Weight: w1, Endpoints: window(w.pool[:3], i, 2)},
		{Name: "z2", Weight: w2, Endpoints: window(w.pool[3:], i, 2)},
	}
}

// share makes n RPCs and returns the fraction the backends of z2 in round i
// served, counted by the backends themselves (only this channel calls its
// pool).
func (w *weighted) share(t *testing.T, n, i int) float64 {
	before := make([]int64, len(w.backends))
	for k, b := range w.backends {
		before[k] = b.Stats().RPCs
	}
	_, errs := w.c.served(n)
	if len(errs) > 0 {
		t.Errorf("%s: %d of %d RPCs failed (first: %v)", w.name, len(errs), n, errs[0])
	}
	z2 := map[string]bool{}
	for _, a := range window(w.pool[3:], i, 2) {
		z2[a] = true
	}
	var all, inZ2 int64
	for k, b := range w.backends {
		d := b.Stats().RPCs - before[k]
		all += d
		if z2[b.Addr()] {
			inZ2 += d
		}
	}
	if all != int64(n-len(errs)) {
		t.Errorf("%s: the backends counted %d RPCs, the client made %d", w.name, all, n-len(errs))
	}
	return float64(inZ2) / float64(all)
}

// TestLocalityWeights: two localities of one priority weighted 1:3, then
// 3:1 pushed live, after EDS churn inside both localities under load. Four
// clusters side by side, each on its own six backends: WrrLocality with
// leakproof_round_robin as its endpoint-picking policy (one manager per
// locality), leakproof_guard over xds_wrr_locality over round_robin (one
// manager per priority), grpc's default (xds_wrr_locality over
// round_robin), and leakproof_round_robin by TypedStruct alone (weights not
// used: one half each).
//
// Tolerance: grpc picks a locality at random with its weight
// (weighted_target's random WRR), so the share of n RPCs is binomial: at
// n = 2,000 and p = 0.75 its standard deviation is sqrt(p(1-p)/n) = 0.0097,
// and ±0.04 is 4.1 of them (a false failure about once in 25,000 checks);
// the round robin inside a locality adds nothing to the split.
func TestLocalityWeights(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	const (
		n      = 2000
		tol    = 0.04
		rounds = 4
	)
	rr := xdsplane.Policy{Name: roundrobin.Name, Config: `{"drainTimeout":"1s"}`}
	wrrRR := rr
	wrrRR.WrrLocality = true
	cfgs := []*weighted{
		{name: "WrrLocality(leakproof_round_robin)", policy: wrrRR, weighted: true, ours: true},
		{name: "leakproof_guard(xds_wrr_locality(round_robin))", policy: xdsplane.Policy{Name: guard.Name, Config: guardOverWrrLocality}, weighted: true, ours: true},
		{name: "grpc's default", weighted: true},
		{name: "leakproof_round_robin alone", policy: rr, ours: true},
	}
	srv := startServer(t)
	var all []string
	for k, w := range cfgs {
		w.backends = e2e.StartBackends(t, 6)
		w.pool = e2e.Addrs(w.backends)
		w.target = name(fmt.Sprintf("weights%d", k))
		all = append(all, w.pool...)
	}
	resources := func(i int, w1, w2 uint32) xdsplane.Resources {
		var sets []xdsplane.Resources
		for _, w := range cfgs {
			sets = append(sets, service(t, w.target, xdsplane.ClusterSpec{Name: "c-" + w.target, Policy: w.policy, Localities: w.localities(i, w1, w2)}))
		}
		return xdsplane.Merge(sets...)
	}
	v := publish(t, srv, resources(0, 1, 3))
	for _, w := range cfgs {
		w.c = dial(t, srv, w.target, !w.ours)
	}
	for _, w := range cfgs {
		w.c.waitServed(append(window(w.pool[:3], 0, 2), window(w.pool[3:], 0, 2)...)...)
	}
	waitAcked(t, srv, xdsplane.EndpointType, v)

	measure := func(round int, want func(*weighted) float64) []float64 {
		got := make([]float64, len(cfgs))
		var wg sync.WaitGroup
		for k, w := range cfgs {
			wg.Add(1)
			go func() { defer wg.Done(); got[k] = w.share(t, n, round) }()
		}
		wg.Wait()
		for k, w := range cfgs {
			if d := math.Abs(got[k] - want(w)); d > tol {
				t.Errorf("%s: %.3f of %d RPCs to z2, want %.2f ± %.2f", w.name, got[k], n, want(w), tol)
			}
		}
		return got
	}
	before := measure(0, func(w *weighted) float64 {
		if w.weighted {
			return 0.75
		}
		return 0.5
	})

	// EDS churn inside both localities under load, weights unchanged, then
	// the weights reversed, pushed while the load runs.
	samplers := make([]*sampler, len(cfgs))
	stops := make([]func() (int, int, error), len(cfgs))
	for k, w := range cfgs {
		samplers[k], stops[k] = sample(t, w.pool...), w.c.load()
	}
	for i := 1; i <= rounds; i++ {
		time.Sleep(200 * time.Millisecond)
		v := publish(t, srv, resources(i, 1, 3))
		waitAcked(t, srv, xdsplane.EndpointType, v)
		for _, w := range cfgs {
			if w.ours {
				e2e.WaitSockets(t, w.pool[(i-1)%3], 0, 2*time.Second)
				e2e.WaitSockets(t, w.pool[3+(i-1)%3], 0, 2*time.Second)
			}
		}
	}
	v = publish(t, srv, resources(rounds, 3, 1))
	waitAcked(t, srv, xdsplane.EndpointType, v)
	time.Sleep(200 * time.Millisecond)
	var churn []string
	for k, w := range cfgs {
		ok, failed, lastErr := stops[k]()
		most := samplers[k].stop()
		peak := 0
		for _, a := range w.pool {
			peak = max(peak, most[a])
		}
		churn = append(churn, fmt.Sprintf("%s: %d RPCs, %d failed, at most %d socket(s) per backend", w.name, ok+failed, failed, peak))
		if w.ours && (peak > 1 || failed > 0) {
			t.Errorf("%s under EDS churn: at most %d sockets per backend (want 1), %d of %d RPCs failed (last: %v)", w.name, peak, failed, ok+failed, lastErr)
		}
	}

	after := measure(rounds, func(w *weighted) float64 {
		if w.weighted {
			return 0.25
		}
		return 0.5
	})
	var splits []string
	for k, w := range cfgs {
		splits = append(splits, fmt.Sprintf("%s: %.3f → %.3f", w.name, before[k], after[k]))
	}
	t.Logf("share of %d RPCs to z2, weights 1:3 → 3:1 pushed live after %d EDS pushes: %s", n, rounds, strings.Join(splits, "; "))
	t.Logf("under churn: %s", strings.Join(churn, "; "))

	for _, w := range cfgs {
		w.c.CC.Close()
	}
	for _, a := range all {
		e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	}
	for _, w := range cfgs {
		if w.ours {
			w.c.Trace.CheckClean(t)
		}
	}
}

// TestLocalityDuplicateWeighted measures what each weighted configuration
// costs for a backend listed in two localities of one priority (spelled
// twice, as grpc NACKs an exact repeat): WrrLocality runs one
// leakproof_round_robin per locality, each with its own manager, so the
// backend gets two subchannels and two sockets, as with grpc's default; the
// guard has one manager for the priority, so it gets one.
func TestLocalityDuplicateWeighted(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	rr := xdsplane.Policy{Name: roundrobin.Name, WrrLocality: true}
	cfgs := []struct {
		name    string
		policy  xdsplane.Policy
		sockets int
	}{
		{"WrrLocality(leakproof_round_robin)", rr, 2},
		{"leakproof_guard(xds_wrr_locality(round_robin))", xdsplane.Policy{Name: guard.Name, Config: guardOverWrrLocality}, 1},
	}
	srv := startServer(t)
	var sets []xdsplane.Resources
	dups := make([]string, len(cfgs))
	targets := make([]string, len(cfgs))
	for k, cfg := range cfgs {
		bs := e2e.StartBackends(t, 1)
		dups[k] = bs[0].Addr()
		targets[k] = name("dupw")
		sets = append(sets, service(t, targets[k], xdsplane.ClusterSpec{Name: "c-" + targets[k], Policy: cfg.policy, Localities: []xdsplane.Locality{
			{Name: "z1", Endpoints: []string{dups[k]}}, {Name: "z2", Weight: 3, Endpoints: []string{mapped(t, dups[k])}},
		}}))
	}
	v := publish(t, srv, xdsplane.Merge(sets...))
	var got []string
	for k, cfg := range cfgs {
		c := dial(t, srv, targets[k], false)
		c.waitServed(dups[k])
		waitAcked(t, srv, xdsplane.EndpointType, v)
		for range 40 { // both localities pick and connect
			c.served(5)
		}
		n := maxSockets(t, 200*time.Millisecond, dups[k])[dups[k]]
		created := c.created()[dups[k]]
		got = append(got, fmt.Sprintf("%s: %d socket(s), %d subchannel(s)", cfg.name, n, created))
		if n != cfg.sockets || created != cfg.sockets {
			t.Errorf("%s: %d sockets and %d subchannels to a backend in two localities, want %d", cfg.name, n, created, cfg.sockets)
		}
		c.CC.Close()
		e2e.WaitSockets(t, dups[k], 0, e2e.LongTimeout)
		c.Trace.CheckClean(t)
	}
	t.Logf("one backend in two localities of one priority: %s", strings.Join(got, "; "))
}

// TestRecommendedClusterJSON publishes the recommended Cluster exactly as
// the docs give it (testdata/cluster_wrr_locality.json, the JSON form of the
// YAML: WrrLocality over leakproof_round_robin, round_robin after it for
// clients without leakproof) for two localities weighted 1:3: the split
// follows the weights and leakproof's managers run. The same Cluster with
// the first policy's name unknown to the client falls back to round_robin
// and still follows the weights.
func TestRecommendedClusterJSON(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	const n, tol = 2000, 0.04
	js, err := os.ReadFile("testdata/cluster_wrr_locality.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t)
	type side struct {
		target, js string
		ours       bool
		w          *weighted
	}
	sides := []*side{
		{target: name("doc"), js: string(js), ours: true},
		{target: name("doc-fallback"), js: strings.Replace(string(js), "type.googleapis.com/leakproof_round_robin", "type.googleapis.com/leakproof_not_linked_in", 1)},
	}
	var sets []xdsplane.Resources
	for _, s := range sides {
		bs := e2e.StartBackends(t, 6)
		s.w = &weighted{name: s.target, backends: bs, pool: e2e.Addrs(bs)}
		res := service(t, s.target, xdsplane.ClusterSpec{Name: "c-" + s.target, Localities: s.w.localities(0, 1, 3)})
		c := &v3clusterpb.Cluster{}
		if err := protojson.Unmarshal([]byte(s.js), c); err != nil {
			t.Fatalf("the documented Cluster does not parse: %v", err)
		}
		c.Name = "c-" + s.target
		c.EdsClusterConfig.ServiceName = res.Clusters[0].GetEdsClusterConfig().GetServiceName()
		res.Clusters[0] = c
		sets = append(sets, res)
	}
	v := publish(t, srv, xdsplane.Merge(sets...))
	for _, s := range sides {
		s.w.c = dial(t, srv, s.target, false)
		s.w.c.waitServed(append(window(s.w.pool[:3], 0, 2), window(s.w.pool[3:], 0, 2)...)...)
	}
	waitAcked(t, srv, xdsplane.ClusterType, v)
	for _, s := range sides {
		got := s.w.share(t, n, 0)
		if math.Abs(got-0.75) > tol {
			t.Errorf("%s: %.3f of %d RPCs to the weight-3 locality, want 0.75 ± %.2f", s.target, got, n, tol)
		}
		created := len(s.w.c.created())
		if s.ours != (created > 0) {
			t.Errorf("%s: leakproof created %d subchannels; want leakproof running: %v", s.target, created, s.ours)
		}
		t.Logf("%s: %.3f to the weight-3 locality, %d leakproof subchannels", s.target, got, created)
		s.w.c.CC.Close()
		for _, a := range s.w.pool {
			e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
		}
		if s.ours {
			s.w.c.Trace.CheckClean(t)
		}
	}
}
