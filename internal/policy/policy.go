// Package policy holds what leakproof's load-balancing policies share: their
// service-config options, grpc's own pick_first builder (captured before
// anything can replace it) and a picker that hands grpc one fixed SubConn.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/serviceconfig"
)

// GRPCPickFirst is grpc-go's own pick_first builder, captured at init time
// so that a later ReplaceGRPCPolicy cannot make a policy its own child.
var GRPCPickFirst = balancer.Get(grpcpickfirst.Name)

// Limits on service-config values; anything outside is a config error.
const (
	MaxDrainTimeout  = 24 * time.Hour
	MaxTraceRingSize = 1 << 20
)

// Config is the service-config of leakproof_pick_first and
// leakproof_round_robin:
//
//	{"shuffleAddressList": true, "drainTimeout": "30s", "traceRingSize": 512, "reresolveInterval": "30s"}
//	{"coalescePickers": true, "drainTimeout": "30s", "traceRingSize": 512, "reresolveInterval": "30s"}
//
// shuffleAddressList is accepted by pick_first only, coalescePickers by
// round_robin only (Fields).
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	ShuffleAddressList bool   `json:"shuffleAddressList,omitempty"`
	CoalescePickers    bool   `json:"coalescePickers,omitempty"`
	DrainTimeout       string `json:"drainTimeout,omitempty"`
	TraceRingSize      *int   `json:"traceRingSize,omitempty"`
	ReresolveInterval  string `json:"reresolveInterval,omitempty"`

	drain     time.Duration // parsed DrainTimeout; 0 means the default
	reresolve time.Duration // parsed ReresolveInterval; 0 means off
}

// Fields says which of the fields that belong to one policy a policy takes.
type Fields uint8

const (
	Shuffle  Fields = 1 << iota // shuffleAddressList: pick_first's
	Coalesce                    // coalescePickers: round_robin's
)

// check returns an error for a set field the policy does not take.
func (c *Config) check(f Fields) error {
	switch {
	case c.ShuffleAddressList && f&Shuffle == 0:
		return errors.New("shuffleAddressList is a pick_first option")
	case c.CoalescePickers && f&Coalesce == 0:
		return errors.New("coalescePickers is a round_robin option")
	}
	return nil
}

// ParseConfig parses and validates a policy's JSON config. Unknown fields
// and bad values are errors that name the policy and the field; so is a
// field that belongs to another policy (f says which the caller takes).
func ParseConfig(policy string, js json.RawMessage, f Fields) (*Config, error) {
	cfg := &Config{}
	if len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null" {
		return cfg, nil
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, fmt.Errorf("%s: invalid config %s: %v", policy, js, err)
	}
	// Decoder.More is no test for trailing data: it is false before a
	// stray ']' or '}'.
	if len(bytes.TrimSpace(js[dec.InputOffset():])) > 0 {
		return nil, fmt.Errorf("%s: invalid config %s: trailing data", policy, js)
	}
	if err := cfg.check(f); err != nil {
		return nil, fmt.Errorf("%s: invalid config: %v", policy, err)
	}
	if cfg.DrainTimeout != "" {
		d, err := time.ParseDuration(cfg.DrainTimeout)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid config: drainTimeout %q: %v", policy, cfg.DrainTimeout, err)
		}
		if d <= 0 || d > MaxDrainTimeout {
			return nil, fmt.Errorf("%s: invalid config: drainTimeout %v must be positive and at most %v (omit it for the default %v)", policy, d, MaxDrainTimeout, subconn.DefaultDrainTimeout)
		}
		cfg.drain = d
	}
	if cfg.ReresolveInterval != "" {
		d, err := parseReresolve(cfg.ReresolveInterval)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid config: %v", policy, err)
		}
		cfg.reresolve = d
	}
	if n := cfg.TraceRingSize; n != nil && (*n < 0 || *n > MaxTraceRingSize) {
		return nil, fmt.Errorf("%s: invalid config: traceRingSize %d must be between 0 and %d", policy, *n, MaxTraceRingSize)
	}
	return cfg, nil
}

// Apply sets the manager options the config carries; absent values restore
// the defaults.
func (c *Config) Apply(m *subconn.Manager) {
	d := c.drain
	if d == 0 {
		d = subconn.DefaultDrainTimeout
	}
	m.SetDrainTimeout(d)
	ring := subconn.DefaultTraceRing
	if c.TraceRingSize != nil {
		ring = *c.TraceRingSize
	}
	m.SetTraceRing(ring)
}

// Reresolve returns the parsed reresolveInterval, 0 when off.
func (c *Config) Reresolve() time.Duration { return c.reresolve }

// parseReresolve parses a reresolveInterval.
func parseReresolve(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("reresolveInterval %q: %v", s, err)
	}
	if d < MinReresolveInterval || d > MaxReresolveInterval {
		return 0, fmt.Errorf("reresolveInterval %v must be between %v and %v (omit it to leave re-resolution to grpc)", d, MinReresolveInterval, MaxReresolveInterval)
	}
	return d, nil
}

// ConfigOf returns the *Config in a ClientConnState, the default for none,
// or an error wrapping balancer.ErrBadResolverState for a foreign type.
func ConfigOf(policy string, lbc serviceconfig.LoadBalancingConfig) (*Config, error) {
	switch c := lbc.(type) {
	case nil:
		return &Config{}, nil
	case *Config:
		return c, nil
	default:
		return nil, fmt.Errorf("%s: received config of type %T: %w", policy, lbc, balancer.ErrBadResolverState)
	}
}

// PickFirstChildConfig returns grpc pick_first's parsed config for shuffle.
// There are only two; each is parsed once.
func PickFirstChildConfig(shuffle bool) (serviceconfig.LoadBalancingConfig, error) {
	if shuffle {
		return shuffledChild()
	}
	return orderedChild()
}

var (
	shuffledChild = sync.OnceValues(func() (serviceconfig.LoadBalancingConfig, error) { return parsePickFirst(true) })
	orderedChild  = sync.OnceValues(func() (serviceconfig.LoadBalancingConfig, error) { return parsePickFirst(false) })
)

func parsePickFirst(shuffle bool) (serviceconfig.LoadBalancingConfig, error) {
	p, ok := GRPCPickFirst.(balancer.ConfigParser)
	if !ok {
		return nil, errors.New("policy: grpc's pick_first has no config parser")
	}
	return p.ParseConfig(json.RawMessage(fmt.Sprintf(`{"shuffleAddressList":%t}`, shuffle)))
}

// ReadySubConn returns the real SubConn a READY pick_first picker always
// returns, so that a parent can pick it directly. It reports false for any
// picker whose result is not a plain SubConn (an error, a Done callback or
// metadata), which is then used as it is.
func ReadySubConn(p balancer.Picker) (balancer.SubConn, bool) {
	if p == nil {
		return nil, false
	}
	res, err := p.Pick(balancer.PickInfo{})
	if err != nil || res.SubConn == nil || res.Done != nil || res.Metadata != nil {
		return nil, false
	}
	if h, ok := res.SubConn.(*subconn.SubConn); ok {
		return h.Unwrap(), true
	}
	return res.SubConn, true
}

// FixedPicker always picks one SubConn; it allocates nothing per Pick.
type FixedPicker struct{ res balancer.PickResult }

// NewFixedPicker returns a picker that always returns sc.
func NewFixedPicker(sc balancer.SubConn) *FixedPicker {
	return &FixedPicker{res: balancer.PickResult{SubConn: sc}}
}

// Pick implements balancer.Picker.
func (p *FixedPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) { return p.res, nil }
