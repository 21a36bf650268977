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
const MaxOrphanTimeout = 24 * time.Hour

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

// parseConfig parses leakproof_guard's JSON config. Every error names the
// field at fault.
func parseConfig(js json.RawMessage) (*lbConfig, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("%s: invalid config %s: %v", Name, js, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: invalid config %s: trailing data", Name, js)
	}
	raw, ok := fields["childPolicy"]
	if !ok {
		return nil, fmt.Errorf(`%s: invalid config: childPolicy is required: a list such as [{"weighted_round_robin": {}}, {"round_robin": {}}]`, Name)
	}
	delete(fields, "childPolicy")
	var compact bytes.Buffer
	if err := json.Compact(&compact, js); err != nil {
		return nil, fmt.Errorf("%s: invalid config %s: %v", Name, js, err)
	}
	cfg := &lbConfig{orphanTimeout: subconn.DefaultOrphanTimeout, orphans: subconn.ReclaimOrphans, raw: compact.Bytes()}
	var err error
	if cfg.child, cfg.childConfig, err = parseChildPolicy(raw); err != nil {
		return nil, fmt.Errorf("%s: invalid config: childPolicy: %v", Name, err)
	}
	if raw, ok := fields["orphanTimeout"]; ok {
		delete(fields, "orphanTimeout")
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf(`%s: invalid config: orphanTimeout %s: want a Go duration such as "30s"`, Name, raw)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid config: orphanTimeout %q: %v", Name, s, err)
		}
		if d <= 0 || d > MaxOrphanTimeout {
			return nil, fmt.Errorf("%s: invalid config: orphanTimeout %v must be positive and at most %v (omit it for the default %v)", Name, d, MaxOrphanTimeout, subconn.DefaultOrphanTimeout)
		}
		cfg.orphanTimeout = d
	}
	if raw, ok := fields["orphans"]; ok {
		delete(fields, "orphans")
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		switch s {
		case "reclaim":
			cfg.orphans = subconn.ReclaimOrphans
		case "report":
			cfg.orphans = subconn.ReportOrphans
		default:
			return nil, fmt.Errorf(`%s: invalid config: orphans %q: want "reclaim" or "report"`, Name, s)
		}
	}
	// What is left is the manager's part (drainTimeout, traceRingSize,
	// reresolveInterval),
	// validated where the other leakproof policies validate it; any other
	// field is unknown and rejected there, by name.
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid config: %v", Name, err)
	}
	if cfg.manager, err = policy.ParseConfig(Name, rest, 0); err != nil {
		return nil, err
	}
	return cfg, nil
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
