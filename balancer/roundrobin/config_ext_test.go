package roundrobin_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"
)

// passParent is a policy that hands its own config down to a
// leakproof_round_robin child unchanged, as grpc's test stub balancers do
// (test/RPCBlockingOnPickerStatsCall): grpc's round_robin ignores
// BalancerConfig, so such a parent works on it.
const passParent = "leakproof_test_pass_config_parent"

type parentConfig struct {
	serviceconfig.LoadBalancingConfig
	Weight int `json:"weight"`
}

type parentBuilder struct{}

func (parentBuilder) Name() string { return passParent }

func (parentBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := &parentConfig{}
	return cfg, json.Unmarshal(js, cfg)
}

func (parentBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	return parent{balancer.Get(roundrobin.Name).Build(cc, opts)}
}

type parent struct{ balancer.Balancer }

func init() { balancer.Register(parentBuilder{}) }

func TestIgnoresAParentsConfig(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	cl := e2e.Dial(t, e2e.ServiceConfig(passParent, `{"weight":3}`), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	if _, err := cl.EchoOK(context.Background()); err != nil {
		t.Fatalf("round_robin under a parent that passes its own config: %v", err)
	}
	cl.WaitServed(e2e.Addrs(bs)...)
}
