package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lproundrobin "github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/test/bufconn"
)

// xdsImpls are the leaf policies BenchmarkXDSChurn compares, as an xDS
// Cluster selects them: grpc's xDS round robin (what lb_policy ROUND_ROBIN
// becomes, xds_wrr_locality over round_robin) and leakproof_round_robin
// selected by a TypedStruct, also with coalescePickers.
var xdsImpls = []struct {
	impl, child, config string
}{
	{"grpc", "xds_wrr_locality_experimental", `{"childPolicy":[{"round_robin":{}}]}`},
	{"leakproof", lproundrobin.Name, `{}`},
	{"leakproof-coalesce", lproundrobin.Name, `{"coalescePickers":true}`},
}

// BenchmarkXDSChurn times one EDS push to a cluster of 1,000 and 10,000
// endpoints (10,000 only with LEAKPROOF_BENCH_LARGE=1) with 1%, 10% and
// 100% of them changed, through grpc's real xDS client and LB
// tree (cds → priority → cluster_impl → the leaf policy) under a real
// go-control-plane management server. One op is one push, alternating
// between two assignments, from Update until the channel is READY on every
// endpoint of the new one (new subchannels READY, removed ones shut down)
// and the process is idle again.
//
// The subchannels are real, but their transports are in memory (bufconn):
// a thousand TCP connections per push would measure the kernel, not the
// policy, and the EDS addresses (127.0.0.1 ports) are never dialed. A
// counting policy sits between cluster_impl and the leaf and reports
// pickers/op (the leaf's UpdateState calls) and subconns/op (NewSubConn
// calls); dials/op counts the transports dialed; cpu-ns/op is the CPU time of the whole process per push, which
// includes the xDS client, the control plane and the transports, the same
// for both.
func BenchmarkXDSChurn(b *testing.B) {
	for _, n := range churnSizes {
		for _, pct := range []int{1, 10, 100} {
			for _, p := range xdsImpls {
				b.Run(fmt.Sprintf("impl=%s/endpoints=%d/changed=%d%%", p.impl, n, pct), func(b *testing.B) {
					skipLarge(b, n)
					benchXDSChurn(b, p.child, p.config, n, pct)
				})
			}
		}
	}
}

// edsAddrs returns n endpoint addresses of generation gen: pct percent of
// them (spread evenly) differ between generations 0 and 1.
func edsAddrs(n, pct, gen int) []string {
	stride := 100 / pct
	out := make([]string, n)
	for i := range out {
		port := 20000 + i
		if gen == 1 && i%stride == 33%stride {
			port = 40000 + i
		}
		out[i] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	return out
}

func benchXDSChurn(b *testing.B, child, childCfg string, n, pct int) {
	srv, err := xdsplane.Start(xdsplane.Options{Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	// A bufconn pipe allocates its buffer up front, one per direction: at
	// 64 KiB, a push of 1,000 new subchannels cleared and collected 128 MB
	// of buffers, the same on both sides, more than the whole tree
	// allocated. The handshakes need a few hundred bytes.
	lis := bufconn.Listen(8 << 10)
	gs := grpc.NewServer()
	go gs.Serve(lis)
	defer gs.Stop()

	stats := &countStats{}
	statsID := countRegistry.add(stats)
	defer countRegistry.remove(statsID)
	cfg := fmt.Sprintf(`{"stats":%d,"child":%q,"config":%s}`, statsID, child, childCfg)
	lists := [2][]string{edsAddrs(n, pct, 0), edsAddrs(n, pct, 1)}
	res := func(g int) xdsplane.Resources {
		r, err := xdsplane.Service("bench", "c", xdsplane.ClusterSpec{Name: "c", Policy: xdsplane.Policy{Name: countName, Config: cfg},
			Localities: []xdsplane.Locality{{Name: "z", Endpoints: lists[g]}}})
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	ctx := context.Background()
	if _, err := srv.Update(ctx, res(0)); err != nil {
		b.Fatal(err)
	}
	r, err := srv.Resolver()
	if err != nil {
		b.Fatal(err)
	}
	var dials atomic.Int64
	cc, err := grpc.NewClient("xds:///bench", grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			dials.Add(1)
			return lis.DialContext(ctx)
		}))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	cc.Connect()
	changed := 0
	for i := range lists[0] {
		if lists[0][i] != lists[1][i] {
			changed++
		}
	}
	settle := func(created int64) {
		// grpc's round_robin takes tens of seconds of CPU per push of
		// 10,000 endpoints on a quiet machine (quadratic in the list).
		deadline := time.Now().Add(time.Duration(n/1000) * 20 * time.Second)
		if n > largeFrom {
			deadline = time.Now().Add(15 * time.Minute)
		}
		for stats.created.Load() < created || stats.ready.Load() != int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("not READY on the new assignment: created %d (want %d), READY %d (want %d); accepted LDS %q RDS %q CDS %q EDS %q, NACKs %v, channel %v",
					stats.created.Load(), created, stats.ready.Load(), n, srv.Acked(xdsplane.ListenerType), srv.Acked(xdsplane.RouteType), srv.Acked(xdsplane.ClusterType), srv.Acked(xdsplane.EndpointType), srv.NACKs(), cc.GetState())
			}
			time.Sleep(100 * time.Microsecond)
		}
		// The subchannels are READY, but the push is not over: each reaches
		// the leaf as READY only once its health update has come through
		// the tree (pick_first with the health listener), and the leaf and
		// its parents still have that work to do. Without this, at 10,000
		// endpoints half of the previous push's READY transitions landed in
		// the next push's measurement. The push is over when the process is
		// idle: three windows of 50 ms in a row with under 2 ms of CPU and
		// no picker from the leaf (one window is not enough on a loaded
		// machine, where a busy process may get no CPU for 50 ms).
		for idle := 0; idle < 3; {
			c0, p0 := cpuTime(), stats.pickers.Load()
			time.Sleep(50 * time.Millisecond)
			if cpuTime()-c0 < 2*time.Millisecond && stats.pickers.Load() == p0 {
				idle++
			} else {
				idle = 0
			}
			if time.Now().After(deadline) {
				b.Fatalf("the process is still busy after the push (%d pickers so far)", stats.pickers.Load())
			}
		}
	}
	settle(int64(n))
	created0, pickers0, dials0 := stats.created.Load(), stats.pickers.Load(), dials.Load()

	b.ReportAllocs()
	stopProfile := cpuProfile(b)
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		g := (i + 1) % 2
		i++
		if _, err := srv.Update(ctx, res(g)); err != nil {
			b.Fatal(err)
		}
		settle(created0 + int64(i*changed))
	}
	cpu := cpuTime() - cpu0
	stopProfile()
	b.ReportMetric(float64(stats.pickers.Load()-pickers0)/float64(b.N), "pickers/op")
	b.ReportMetric(float64(stats.created.Load()-created0)/float64(b.N), "subconns/op")
	b.ReportMetric(float64(dials.Load()-dials0)/float64(b.N), "dials/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// countName is a pass-through policy that counts what its child does: the
// leaf of the xDS tree in BenchmarkXDSChurn.
const countName = "leakproof_bench_count"

func init() { balancer.Register(countBuilder{}) }

type countStats struct {
	pickers, created, ready atomic.Int64
}

// countRegistry hands each benchmark's stats to the policy its Cluster
// names (the config carries only an id).
var countRegistry = &registry{m: map[int]*countStats{}}

type registry struct {
	mu   sync.Mutex
	m    map[int]*countStats
	next int
}

func (r *registry) add(s *countStats) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	r.m[r.next] = s
	return r.next
}

func (r *registry) get(id int) *countStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

func (r *registry) remove(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

type countConfig struct {
	serviceconfig.LoadBalancingConfig
	raw   json.RawMessage // the xDS tree marshals a leaf's config and parses it again
	stats *countStats
	child balancer.Builder
	cfg   serviceconfig.LoadBalancingConfig
}

// MarshalJSON returns the config as parsed.
func (c *countConfig) MarshalJSON() ([]byte, error) { return c.raw, nil }

type countBuilder struct{}

func (countBuilder) Name() string { return countName }

func (countBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	var raw struct {
		Stats  int             `json:"stats"`
		Child  string          `json:"child"`
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", countName, err)
	}
	bb := balancer.Get(raw.Child)
	if bb == nil {
		return nil, fmt.Errorf("%s: no policy %q", countName, raw.Child)
	}
	c := &countConfig{raw: append(json.RawMessage(nil), js...), stats: countRegistry.get(raw.Stats), child: bb}
	if c.stats == nil {
		return nil, fmt.Errorf("%s: no stats %d", countName, raw.Stats)
	}
	if p, ok := bb.(balancer.ConfigParser); ok {
		cfg, err := p.ParseConfig(raw.Config)
		if err != nil {
			return nil, err
		}
		c.cfg = cfg
	}
	return c, nil
}

func (countBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	return &countBalancer{cc: cc, opts: opts}
}

type countBalancer struct {
	cc    balancer.ClientConn
	opts  balancer.BuildOptions
	child balancer.Balancer
}

func (c *countBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, ok := s.BalancerConfig.(*countConfig)
	if !ok {
		return fmt.Errorf("%s: config %T", countName, s.BalancerConfig)
	}
	if c.child == nil {
		c.child = cfg.child.Build(&countCC{ClientConn: c.cc, s: cfg.stats}, c.opts)
	}
	s.BalancerConfig = cfg.cfg
	return c.child.UpdateClientConnState(s)
}

func (c *countBalancer) ResolverError(err error) {
	if c.child != nil {
		c.child.ResolverError(err)
	}
}

func (c *countBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (c *countBalancer) ExitIdle() {
	if c.child != nil {
		c.child.ExitIdle()
	}
}

func (c *countBalancer) Close() {
	if c.child != nil {
		c.child.Close()
	}
}

// countCC counts the child's pickers and SubConns, and how many of its
// SubConns are READY.
type countCC struct {
	balancer.ClientConn
	s *countStats
}

func (c *countCC) UpdateState(st balancer.State) {
	c.s.pickers.Add(1)
	c.ClientConn.UpdateState(st)
}

func (c *countCC) NewSubConn(addrs []resolver.Address, o balancer.NewSubConnOptions) (balancer.SubConn, error) {
	inner := o.StateListener
	ready := false
	o.StateListener = func(st balancer.SubConnState) {
		switch now := st.ConnectivityState == connectivity.Ready; {
		case now && !ready:
			c.s.ready.Add(1)
		case !now && ready:
			c.s.ready.Add(-1)
		}
		ready = st.ConnectivityState == connectivity.Ready
		if inner != nil {
			inner(st)
		}
	}
	sc, err := c.ClientConn.NewSubConn(addrs, o)
	if err == nil {
		c.s.created.Add(1)
	}
	return sc, err
}

// cpuProfile starts a CPU profile of the pushes alone (not the set-up) when
// $LEAKPROOF_BENCH_CPUPROFILE names a directory, written to
// <benchmark>.pprof there by the returned function; the last run of a
// benchmark (its largest b.N) is the one kept. Do not combine it with
// -cpuprofile.
func cpuProfile(b *testing.B) (stop func()) {
	dir := os.Getenv("LEAKPROOF_BENCH_CPUPROFILE")
	if dir == "" {
		return func() {}
	}
	name := strings.NewReplacer("/", "_", "=", "-", "%", "pct").Replace(b.Name())
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
