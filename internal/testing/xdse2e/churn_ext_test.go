package xdse2e_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
)

// sampler records the maximum number of sockets to each backend seen while
// it runs, sampling every few milliseconds.
type sampler struct {
	t    *testing.T
	quit chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	max  map[string]int
}

func sample(t *testing.T, addrs ...string) *sampler {
	s := &sampler{t: t, quit: make(chan struct{}), max: map[string]int{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			for _, a := range addrs {
				n, err := leaktest.SocketsTo(a)
				if err != nil {
					t.Errorf("SocketsTo(%s): %v", a, err)
					return
				}
				s.mu.Lock()
				s.max[a] = max(s.max[a], n)
				s.mu.Unlock()
			}
			select {
			case <-s.quit:
				return
			case <-time.After(3 * time.Millisecond):
			}
		}
	}()
	return s
}

// stop ends sampling and returns the maximum per backend.
func (s *sampler) stop() map[string]int {
	close(s.quit)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// window returns the n backends of pool starting at i (wrapping).
func window(pool []string, i, n int) []string {
	out := make([]string, n)
	for k := range n {
		out[k] = pool[(i+k)%len(pool)]
	}
	return out
}

// TestEDSChurn: endpoints added and removed every ~200 ms by EDS pushes,
// under RPC load, for leakproof_round_robin and, on a pool of its own in the
// same run, grpc's xDS round robin. Each push moves a window of 3 of 6
// backends one step: one backend is removed, one added. After each push is
// ACKed, the removed backend must reach 0 sockets while the channel is open;
// throughout, at most 1 socket per backend; after close, the baseline and a
// clean trace. grpc's figures are measured and logged beside ours.
func TestEDSChurn(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	rounds := 8
	if heavy {
		rounds = 100
	}
	oursPool := e2e.Addrs(e2e.StartBackends(t, 6))
	grpcPool := e2e.Addrs(e2e.StartBackends(t, 6))
	srv := startServer(t)
	rr, grpcRR := name("churn-rr"), name("churn-grpc")
	resources := func(i int) xdsplane.Resources {
		return xdsplane.Merge(
			service(t, rr, xdsplane.ClusterSpec{Name: "c-" + rr, Policy: xdsplane.Policy{Name: roundrobin.Name, Config: `{"drainTimeout":"1s"}`}, Localities: one(window(oursPool, i, 3)...)}),
			service(t, grpcRR, xdsplane.ClusterSpec{Name: "c-" + grpcRR, Localities: one(window(grpcPool, i, 3)...)}),
		)
	}
	publish(t, srv, resources(0))
	ours := dial(t, srv, rr, false)
	theirs := dial(t, srv, grpcRR, true)
	ours.waitServed(window(oursPool, 0, 3)...)
	theirs.waitServed(window(grpcPool, 0, 3)...)

	sOurs, sTheirs := sample(t, oursPool...), sample(t, grpcPool...)
	stopOurs, stopTheirs := ours.load(), theirs.load()
	var grpcSlow []time.Duration // how long grpc took to release each removed backend
	for i := 1; i <= rounds; i++ {
		time.Sleep(200 * time.Millisecond)
		v := publish(t, srv, resources(i))
		waitAcked(t, srv, xdsplane.EndpointType, v)
		removedOurs, removedTheirs := oursPool[(i-1)%6], grpcPool[(i-1)%6]
		e2e.WaitSockets(t, removedOurs, 0, 2*time.Second) // leakproof: released while the channel is open
		start := time.Now()
		e2e.WaitSockets(t, removedTheirs, 0, 2*time.Second)
		grpcSlow = append(grpcSlow, time.Since(start))
	}
	okOurs, failOurs, errOurs := stopOurs()
	okTheirs, failTheirs, errTheirs := stopTheirs()
	maxOurs, maxTheirs := sOurs.stop(), sTheirs.stop()
	ours.waitServed(window(oursPool, rounds, 3)...)

	for _, a := range oursPool {
		if maxOurs[a] > 1 {
			t.Errorf("%s: %d sockets to %s at once, want at most 1", roundrobin.Name, maxOurs[a], a)
		}
	}
	if failOurs > 0 {
		t.Errorf("%s: %d of %d RPCs failed under EDS churn (last: %v)", roundrobin.Name, failOurs, okOurs+failOurs, errOurs)
	}
	created := 0
	for _, n := range ours.created() {
		created += n
	}
	// Every push adds one backend: 3 at the start, then one per round.
	if created != 3+rounds {
		t.Errorf("%s: %d subchannels created over %d pushes, want %d (one per added backend)", roundrobin.Name, created, rounds, 3+rounds)
	}
	t.Logf("%d EDS pushes: %s: %d RPCs, %d failed, max sockets per backend %v, %d subchannels created; grpc's xDS round robin: %d RPCs, %d failed (last: %v), max sockets per backend %v, removed backends released within %v",
		rounds, roundrobin.Name, okOurs+failOurs, failOurs, maxOurs, created, okTheirs+failTheirs, failTheirs, errTheirs, maxTheirs, slowest(grpcSlow))

	ours.CC.Close()
	theirs.CC.Close()
	for _, a := range append(oursPool, grpcPool...) {
		e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	}
	ours.Trace.CheckClean(t)
}

func slowest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// lines returns the lines of msgs that contain sub.
func lines(msgs []string, sub string) []string {
	var out []string
	for _, m := range msgs {
		if strings.Contains(m, sub) {
			out = append(out, m)
		}
	}
	return out
}
