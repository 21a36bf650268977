package roundrobin

import (
	"encoding/json"

	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/serviceconfig"
)

// ParseConfig is strict under leakproof's name. Under grpc's name it accepts
// every config, as grpc's round_robin (which has no config) does, and parses
// one that sets nothing to nil: the xDS parents (wrrlocality, priority, cds)
// build round_robin children with a nil config and compare against it.
func (b builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	if b.name == Name {
		return policy.Parse(b.name, js, policy.Coalesce, policy.Strict)
	}
	cfg, err := policy.Parse(b.name, js, policy.Coalesce, policy.GRPCNames)
	if err != nil || cfg.IsDefault() {
		return nil, err
	}
	return cfg, nil
}

// configOf returns the policy's config in a ClientConnState, or the defaults
// for nil or a config of another type: a parent policy may pass its own
// config down, and grpc's round_robin ignores BalancerConfig altogether.
func configOf(lbc serviceconfig.LoadBalancingConfig) *policy.Config {
	if c, ok := lbc.(*policy.Config); ok {
		return c
	}
	return &policy.Config{}
}
