package soak

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/credentials/insecure"
)

// selection is what a service config selects, as grpc reads it: the first
// registered policy of loadBalancingConfig (or loadBalancingPolicy, or
// pick_first), and under the guard the first registered child.
type selection struct {
	// policy in the soak's notation: a registered name, or
	// "leakproof_guard:<child>".
	policy string
	// drain is the longest a removed backend's sockets may stay open under
	// the config: the leakproof policies' drainTimeout, or the guard's
	// orphanTimeout if longer (its defaults when absent); 0 for a policy
	// that has none.
	drain time.Duration
}

// lbEntry is one {"name": config} of a policy list.
type lbEntry = map[string]json.RawMessage

// selectPolicy validates sc as grpc would at NewClient and returns what it
// selects. Every error says what is wrong with the config.
func selectPolicy(sc string) (selection, error) {
	var top struct {
		LoadBalancingConfig []lbEntry `json:"loadBalancingConfig"`
		LoadBalancingPolicy string    `json:"loadBalancingPolicy"`
	}
	if err := json.Unmarshal([]byte(sc), &top); err != nil {
		return selection{}, fmt.Errorf("service config: %v", err)
	}
	// grpc's own parse: unknown policies, the policies' own config errors.
	cc, err := grpc.NewClient("passthrough:///soak-service-config",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(sc))
	if err != nil {
		return selection{}, fmt.Errorf("service config: %v", err)
	}
	cc.Close()
	name, cfg := firstRegistered(top.LoadBalancingConfig)
	if name == "" {
		name = cmp.Or(strings.ToLower(top.LoadBalancingPolicy), "pick_first")
		cfg = json.RawMessage("{}")
	}
	sel := selection{policy: name}
	switch {
	case name == guard.Name:
		var g struct {
			ChildPolicy   []lbEntry `json:"childPolicy"`
			DrainTimeout  string    `json:"drainTimeout"`
			OrphanTimeout string    `json:"orphanTimeout"`
		}
		if err := json.Unmarshal(cfg, &g); err != nil {
			return selection{}, fmt.Errorf("service config: %s: %v", name, err)
		}
		child, _ := firstRegistered(g.ChildPolicy)
		sel.policy = guardPrefix + child
		sel.drain = max(durationOr(g.DrainTimeout, subconn.DefaultDrainTimeout), durationOr(g.OrphanTimeout, subconn.DefaultOrphanTimeout))
	case isLeakproof(name):
		var p struct {
			DrainTimeout string `json:"drainTimeout"`
		}
		if err := json.Unmarshal(cfg, &p); err != nil {
			return selection{}, fmt.Errorf("service config: %s: %v", name, err)
		}
		sel.drain = durationOr(p.DrainTimeout, subconn.DefaultDrainTimeout)
	}
	return sel, nil
}

// firstRegistered returns the first registered policy of list and its
// config, as grpc picks it.
func firstRegistered(list []lbEntry) (string, json.RawMessage) {
	for _, e := range list {
		for name, cfg := range e {
			if balancer.Get(name) != nil {
				return name, cfg
			}
		}
	}
	return "", nil
}

// durationOr parses s (already validated by the policy's own parser), or
// returns def for an empty s.
func durationOr(s string, def time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if s == "" || err != nil {
		return def
	}
	return d
}

// serviceConfig names policy with its config (policyConfig).
func serviceConfig(policy string, drain time.Duration) string {
	name, cfg := policyConfig(policy, drain)
	return fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, name, cfg)
}

// policyConfig returns the registered name and the JSON config of policy;
// the leakproof policies get the drain timeout. "leakproof_guard:<child>"
// runs child under the guard, with an orphan timeout of half the drain
// timeout, so that an orphan's sockets are closed within the removal bound
// (drain timeout plus slack) even when streams keep them draining.
func policyConfig(policy string, drain time.Duration) (name, cfg string) {
	cfg = "{}"
	if child, ok := strings.CutPrefix(policy, guardPrefix); ok {
		childCfg := cmp.Or(guardedChildConfig[child], "{}")
		cfg = fmt.Sprintf(`{"childPolicy":[{%q:%s}],"drainTimeout":%q,"orphanTimeout":%q}`, child, childCfg, drain.String(), (drain / 2).String())
		policy = guard.Name
	} else if isLeakproof(policy) {
		cfg = fmt.Sprintf(`{"drainTimeout":%q}`, drain.String())
	}
	return policy, cfg
}
