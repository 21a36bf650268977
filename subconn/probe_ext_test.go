package subconn_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/serviceconfig"
)

// probePolicy owns a manager and hands the test the manager and grpc's real
// ClientConn, so that a test can drive the manager (Acquire, the child
// ClientConn) on a real channel. With "pickFirst" it also runs grpc's
// pick_first on the manager, so RPCs flow; "drainTimeout" sets the manager's
// drain timeout through SetDrainTimeout, where "0s" (no bound) is allowed,
// unlike in the policies' configs.
const probePolicy = "subconn_test_probe"

type probeConfig struct {
	serviceconfig.LoadBalancingConfig
	PickFirst    bool   `json:"pickFirst"`
	DrainTimeout string `json:"drainTimeout"`
}

type probeBuilder struct{}

func (probeBuilder) Name() string { return probePolicy }

func (probeBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := &probeConfig{}
	if err := json.Unmarshal(js, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (probeBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	target := opts.Target.String()
	b := &probe{M: subconn.NewManager(cc, subconn.WithTarget(target)), CC: cc, opts: opts, target: target}
	probes.Store(target, b)
	return b
}

// probes holds the probe of each channel by target.
var probes sync.Map

type probe struct {
	M  *subconn.Manager
	CC balancer.ClientConn // grpc's own

	opts   balancer.BuildOptions
	target string
	mu     sync.Mutex
	child  balancer.Balancer
}

func (b *probe) UpdateClientConnState(s balancer.ClientConnState) error {
	cfg, _ := s.BalancerConfig.(*probeConfig)
	if cfg == nil {
		return nil
	}
	if cfg.DrainTimeout != "" {
		d, err := time.ParseDuration(cfg.DrainTimeout)
		if err != nil {
			return err
		}
		b.M.SetDrainTimeout(d)
	}
	if !cfg.PickFirst {
		return nil
	}
	b.mu.Lock()
	if b.child == nil {
		b.child = balancer.Get(grpcpickfirst.Name).Build(b.M.ClientConn(b.CC, "pick_first"), b.opts)
	}
	child := b.child
	b.mu.Unlock()
	return child.UpdateClientConnState(balancer.ClientConnState{ResolverState: s.ResolverState})
}

func (b *probe) ResolverError(err error) {
	if c := b.getChild(); c != nil {
		c.ResolverError(err)
	}
}

func (b *probe) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *probe) ExitIdle() {
	if c := b.getChild(); c != nil {
		c.ExitIdle()
	}
}

func (b *probe) Close() {
	if c := b.getChild(); c != nil {
		c.Close()
	}
	b.M.Close()
	probes.Delete(b.target)
}

func (b *probe) getChild() balancer.Balancer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.child
}

func init() { balancer.Register(probeBuilder{}) }

// probeOf returns the probe of c's channel once grpc has built it.
func probeOf(t *testing.T, c *e2e.Client) *probe {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		if b, ok := probes.Load(c.Target); ok {
			return b.(*probe)
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe policy was never built")
		}
		time.Sleep(time.Millisecond)
	}
}

// stateWaiter is a StateListener whose states a test can wait for.
type stateWaiter struct {
	mu     sync.Mutex
	states []connectivity.State
}

func (w *stateWaiter) listen(s balancer.SubConnState) {
	w.mu.Lock()
	w.states = append(w.states, s.ConnectivityState)
	w.mu.Unlock()
}

func (w *stateWaiter) waitFor(t *testing.T, want connectivity.State, nth int) {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		w.mu.Lock()
		n := 0
		for _, s := range w.states {
			if s == want {
				n++
			}
		}
		states := fmt.Sprint(w.states)
		w.mu.Unlock()
		if n >= nth {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v (#%d) never came; states %s", want, nth, states)
		}
		time.Sleep(time.Millisecond)
	}
}
