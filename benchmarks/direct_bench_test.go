package benchmarks

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// directName is a policy for benchmarks only: it creates no subchannel by
// itself and lets the benchmark create and shut them down, either on grpc's
// own balancer.ClientConn ({"managed": false}) or through a subconn.Manager
// ({"managed": true}). It is the smallest policy with each, so that what
// differs between the two is the manager alone, on a real grpc.ClientConn
// with real addrConns.
const directName = "leakproof_bench_direct"

func init() { balancer.Register(directBuilder{}) }

type directConfig struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	Managed       bool `json:"managed"`
	TraceRingSize *int `json:"traceRingSize"`
}

type directBuilder struct{}

func (directBuilder) Name() string { return directName }

func (directBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	var cfg directConfig
	if err := json.Unmarshal(js, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %v", directName, err)
	}
	return &cfg, nil
}

// directs holds the live direct policies by channel target.
var directs sync.Map // target -> *directLB

func (directBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	l := &directLB{cc: cc, ready: make(chan struct{})}
	directs.Store(cc.Target(), l)
	return l
}

type directLB struct {
	cc    balancer.ClientConn
	once  sync.Once
	ready chan struct{} // closed once the first config is in
	m     *subconn.Manager
}

func (l *directLB) UpdateClientConnState(s balancer.ClientConnState) error {
	l.once.Do(func() {
		cfg, _ := s.BalancerConfig.(*directConfig)
		if cfg != nil && cfg.Managed {
			var opts []subconn.Option
			if cfg.TraceRingSize != nil {
				opts = append(opts, subconn.WithTraceRing(*cfg.TraceRingSize))
			}
			l.m = subconn.NewManager(l.cc, opts...)
		}
		close(l.ready)
	})
	return nil
}

func (l *directLB) ResolverError(error) {}

func (l *directLB) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (l *directLB) ExitIdle() {}

func (l *directLB) Close() {
	if l.m != nil {
		l.m.Close()
	}
	directs.Delete(l.cc.Target())
}

// add creates a subchannel to addr, not connected; onState (may be nil)
// receives its states.
func (l *directLB) add(addr string, onState func(connectivity.State)) (sc balancer.SubConn, release func(), err error) {
	listener := func(s balancer.SubConnState) {
		if onState != nil {
			onState(s.ConnectivityState)
		}
	}
	if l.m == nil {
		sc, err := l.cc.NewSubConn([]resolver.Address{{Addr: addr}}, balancer.NewSubConnOptions{StateListener: listener})
		if err != nil {
			return nil, nil, err
		}
		return sc, sc.Shutdown, nil
	}
	h, err := l.m.Acquire(resolver.Address{Addr: addr}, "bench", subconn.WithStateListener(listener))
	if err != nil {
		return nil, nil, err
	}
	return h, func() {
		if err := h.Release("bench"); err != nil {
			panic(err)
		}
	}, nil
}

// directOf waits for the direct policy of c.
func directOf(tb testing.TB, c *channel) *directLB {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, ok := directs.Load(c.target); ok {
			l := v.(*directLB)
			select {
			case <-l.ready:
				return l
			case <-time.After(time.Until(deadline)):
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the %s policy of %s was never built", directName, c.target)
		}
		time.Sleep(time.Millisecond)
	}
}

// directConfigJSON returns the service config of the direct policy.
func directConfigJSON(managed bool, ring *int) string {
	cfg := fmt.Sprintf(`{"managed":%t}`, managed)
	if ring != nil {
		cfg = fmt.Sprintf(`{"managed":%t,"traceRingSize":%d}`, managed, *ring)
	}
	return fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, directName, cfg)
}
