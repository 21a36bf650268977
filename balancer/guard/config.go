package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/leakproof/leakproof/internal/policy"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"
)

// MaxOrphanTimeout is the longest orphanTimeout a config may set.
const MaxOrphanTimeout = policy.MaxOrphanTimeout

// lbConfig is leakproof_guard's parsed config.
type lbConfig struct {
	serviceconfig.LoadBalancingConfig

	child         balancer.Builder
	childConfig   serviceconfig.LoadBalancingConfig // nil if the child has no parser
	orphanTimeout time.Duration
	orphans       subconn.OrphanMode
	reresolve     time.Duration   // Wrap's; leakproof_guard's is in manager
	manager       *policy.Config  // drainTimeout, traceRingSize, reresolveInterval
	raw           json.RawMessage // the config as parsed, for MarshalJSON
}

// MarshalJSON returns the config as it was parsed. gRPC marshals the
// parsed config of a policy an xDS control plane selects and parses it
// again (cds builds the priority tree's config as JSON), so the config must
// survive the round trip.
func (c *lbConfig) MarshalJSON() ([]byte, error) {
	if c.raw == nil {
		return nil, fmt.Errorf("%s: config was not built by ParseConfig", Name)
	}
	return c.raw, nil
}

// parseConfig parses leakproof_guard's JSON config with the policies' one
// parser; the child-policy list is then parsed by each child's own parser.
// Every error names the field at fault.
func parseConfig(js json.RawMessage) (*lbConfig, error) {
	pc, err := policy.Parse(Name, js, policy.Guard, policy.Strict)
	if err != nil {
		return nil, err
	}
	// Parse has checked the JSON, so compacting it cannot fail.
	var compact bytes.Buffer
	if err := json.Compact(&compact, js); err != nil {
		return nil, fmt.Errorf("%s: invalid config %s: %v", Name, js, err)
	}
	if n := nesting(pc.ChildPolicy); n >= maxNesting {
		return nil, fmt.Errorf("%s: invalid config: childPolicy nests %s %d levels deep inside itself; at most %d (a guard under a guard adds nothing)", Name, Name, n+1, maxNesting)
	}
	cfg := &lbConfig{manager: pc, raw: compact.Bytes()}
	cfg.orphanTimeout, cfg.orphans = pc.Orphan()
	if cfg.child, cfg.childConfig, err = parseChildPolicy(pc.ChildPolicy); err != nil {
		return nil, fmt.Errorf("%s: invalid config: childPolicy: %v", Name, err)
	}
	return cfg, nil
}

// maxNesting bounds how many leakproof_guard levels a config may nest, this
// one included: each level parses its child's config again and keeps its
// JSON, so a deep chain costs quadratic time and memory for nothing.
const maxNesting = 4

// nesting returns how many leakproof_guard configs are nested in the
// child-policy list raw, following the entry grpc would choose (the first
// registered policy) as long as it is leakproof_guard. Malformed JSON is 0:
// parseChildPolicy reports it.
func nesting(raw json.RawMessage) int {
	n := 0
	for n <= maxNesting {
		var list []map[string]json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return n
		}
		var next json.RawMessage
		for _, e := range list {
			for name, js := range e {
				if next == nil && balancer.Get(name) != nil {
					next = js
					if name != Name {
						return n
					}
				}
			}
			if next != nil {
				break
			}
		}
		if next == nil {
			return n
		}
		var child struct {
			ChildPolicy json.RawMessage `json:"childPolicy"`
		}
		if json.Unmarshal(next, &child) != nil {
			return n + 1
		}
		n, raw = n+1, child.ChildPolicy
	}
	return n
}

// parseChildPolicy picks the first registered policy of a child-policy list
// and parses its config with its own parser, as grpc does for child policy
// lists.
func parseChildPolicy(raw json.RawMessage) (balancer.Builder, serviceconfig.LoadBalancingConfig, error) {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, nil, fmt.Errorf(`want a list of {"policy name": config} objects, got %s: %v`, raw, err)
	}
	if len(list) == 0 {
		return nil, nil, fmt.Errorf("is empty: name at least one policy")
	}
	var names []string
	for i, e := range list {
		if len(e) != 1 {
			return nil, nil, fmt.Errorf(`entry %d has %d keys, want exactly one {"policy name": config}`, i, len(e))
		}
		for name, js := range e {
			names = append(names, name)
			b := balancer.Get(name)
			if b == nil {
				continue
			}
			p, ok := b.(balancer.ConfigParser)
			if !ok {
				return b, nil, nil
			}
			if len(bytes.TrimSpace(js)) == 0 {
				js = json.RawMessage("{}")
			}
			c, err := p.ParseConfig(js)
			if err != nil {
				return nil, nil, fmt.Errorf("policy %q rejected its config %s: %v", name, js, err)
			}
			return b, c, nil
		}
	}
	return nil, nil, fmt.Errorf("none of the policies %s is registered (import the package that registers one)", strings.Join(names, ", "))
}
