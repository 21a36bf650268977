package policy

import (
	"bytes"
	"encoding/json"
	"time"

	"google.golang.org/grpc/grpclog"
)

var logger = grpclog.Component("leakproof")

// ParseGRPCNameConfig parses a config given to a policy registered under
// grpc's own name (ReplaceGRPCPolicy): it accepts every config grpc's policy
// accepts. Unknown fields are ignored, as grpc ignores them; leakproof's own
// fields are applied when valid, and a bad value, a non-object or a field
// the policy does not take (shuffleAddressList for round_robin) is logged and
// left at its default, because grpc would have accepted the config. Callers
// check first what grpc itself rejects.
func ParseGRPCNameConfig(policy string, js json.RawMessage, f Fields) *Config {
	t := bytes.TrimSpace(js)
	if len(t) == 0 || string(t) == "null" {
		return &Config{}
	}
	cfg := &Config{}
	if err := json.Unmarshal(t, cfg); err != nil {
		logger.Warningf("%s: ignoring config %s: %v", policy, js, err)
		return &Config{}
	}
	if cfg.ShuffleAddressList && f&Shuffle == 0 {
		logger.Warningf("%s: ignoring shuffleAddressList, a pick_first option", policy)
		cfg.ShuffleAddressList = false
	}
	if cfg.CoalescePickers && f&Coalesce == 0 {
		logger.Warningf("%s: ignoring coalescePickers, a round_robin option", policy)
		cfg.CoalescePickers = false
	}
	if cfg.DrainTimeout != "" {
		d, err := time.ParseDuration(cfg.DrainTimeout)
		if err == nil && d > 0 && d <= MaxDrainTimeout {
			cfg.drain = d
		} else {
			logger.Warningf("%s: ignoring drainTimeout %q: want a Go duration in (0, %v]", policy, cfg.DrainTimeout, MaxDrainTimeout)
			cfg.DrainTimeout = ""
		}
	}
	if cfg.ReresolveInterval != "" {
		d, err := parseReresolve(cfg.ReresolveInterval)
		if err == nil {
			cfg.reresolve = d
		} else {
			logger.Warningf("%s: ignoring %v", policy, err)
			cfg.ReresolveInterval = ""
		}
	}
	if n := cfg.TraceRingSize; n != nil && (*n < 0 || *n > MaxTraceRingSize) {
		logger.Warningf("%s: ignoring traceRingSize %d: want [0, %d]", policy, *n, MaxTraceRingSize)
		cfg.TraceRingSize = nil
	}
	return cfg
}

// IsDefault reports whether c sets nothing.
func (c *Config) IsDefault() bool {
	return !c.ShuffleAddressList && !c.CoalescePickers && c.DrainTimeout == "" && c.TraceRingSize == nil && c.ReresolveInterval == ""
}
