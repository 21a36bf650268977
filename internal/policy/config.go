package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/serviceconfig"
)

var logger = grpclog.Component("leakproof")

// Limits on service-config values; anything outside is a config error.
const (
	MaxDrainTimeout  = 24 * time.Hour
	MaxOrphanTimeout = 24 * time.Hour
	MaxTraceRingSize = 1 << 20
)

// Config is the service config of leakproof's policies, parsed by Parse:
//
//	{"shuffleAddressList": true, "drainTimeout": "30s", "traceRingSize": 512, "reresolveInterval": "30s"}
//	{"coalescePickers": true, "drainTimeout": "30s", "traceRingSize": 512, "reresolveInterval": "30s"}
//	{"childPolicy": [{"round_robin": {}}], "orphanTimeout": "30s", "orphans": "reclaim", "drainTimeout": "30s"}
//
// drainTimeout, traceRingSize and reresolveInterval belong to every policy;
// the others to one (Fields). The exported fields hold the config as given,
// so that it marshals back to JSON that parses the same.
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	ShuffleAddressList bool            `json:"shuffleAddressList,omitempty"`
	CoalescePickers    bool            `json:"coalescePickers,omitempty"`
	ChildPolicy        json.RawMessage `json:"childPolicy,omitempty"`
	OrphanTimeout      string          `json:"orphanTimeout,omitempty"`
	Orphans            string          `json:"orphans,omitempty"`
	DrainTimeout       string          `json:"drainTimeout,omitempty"`
	TraceRingSize      *int            `json:"traceRingSize,omitempty"`
	ReresolveInterval  string          `json:"reresolveInterval,omitempty"`

	drain     time.Duration // parsed DrainTimeout; 0 means the default
	reresolve time.Duration // parsed ReresolveInterval; 0 means off
	orphan    time.Duration // parsed OrphanTimeout; 0 means the default
}

// Fields says which of the fields that belong to one policy a policy takes.
type Fields uint8

const (
	Shuffle  Fields = 1 << iota // shuffleAddressList: pick_first's
	Coalesce                    // coalescePickers: round_robin's
	Guard                       // childPolicy (required), orphanTimeout, orphans: leakproof_guard's
)

// Mode says how Parse treats a config it cannot take whole.
type Mode uint8

const (
	// Strict rejects unknown fields, trailing data, a field of another
	// policy and every bad value, with an error naming the field. It is
	// the mode of leakproof's own policy names.
	Strict Mode = iota
	// GRPCNames accepts every config a grpc policy of the same name
	// accepts, for a policy registered under grpc's own name
	// (ReplaceGRPCPolicy), so that replacing grpc's policy never turns a
	// working service config into an error: unknown fields are ignored,
	// as grpc ignores them, and any other fault is logged and its field
	// (for a config that is not a JSON object, every field) left at its
	// default. Callers check first what grpc itself rejects.
	GRPCNames
)

// fieldsOf is how a config reads off the wire: each field raw, so that a
// value of the wrong type is an error naming its field, not the decoder's.
type fieldsOf struct {
	ShuffleAddressList json.RawMessage `json:"shuffleAddressList"`
	CoalescePickers    json.RawMessage `json:"coalescePickers"`
	ChildPolicy        json.RawMessage `json:"childPolicy"`
	OrphanTimeout      json.RawMessage `json:"orphanTimeout"`
	Orphans            json.RawMessage `json:"orphans"`
	DrainTimeout       json.RawMessage `json:"drainTimeout"`
	TraceRingSize      json.RawMessage `json:"traceRingSize"`
	ReresolveInterval  json.RawMessage `json:"reresolveInterval"`
}

// Parse parses policy's JSON config: the one parser of leakproof's
// policies and the guard. f says which policy-specific fields the caller
// takes; mode how a fault is treated. In Strict mode every error starts
// "<policy>: invalid config" and names the field at fault; in GRPCNames
// mode Parse never fails. Blank input and JSON null are the default config
// (for Guard, an error: childPolicy is required).
func Parse(policy string, js json.RawMessage, f Fields, mode Mode) (*Config, error) {
	p := parser{policy: policy, mode: mode}
	cfg := &Config{}
	t := bytes.TrimSpace(js)
	var raw fieldsOf
	if len(t) != 0 && string(t) != "null" {
		if err := decode(t, &raw, mode); err != nil {
			if err := p.fault(fmt.Errorf("%s: invalid config %s: %v", policy, js, err), "ignoring config %s: %v", js, err); err != nil {
				return nil, err
			}
			raw = fieldsOf{}
		}
	}
	if err := p.parse(cfg, &raw, f); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decode decodes the JSON object js into raw. Strict, it rejects unknown
// fields and anything after the object.
func decode(js []byte, raw *fieldsOf, mode Mode) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	if mode == Strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(raw); err != nil {
		return err
	}
	// Decoder.More is no test for trailing data: it is false before a
	// stray ']' or '}'.
	if len(bytes.TrimSpace(js[dec.InputOffset():])) > 0 {
		return errors.New("trailing data")
	}
	return nil
}

// parser is one Parse call: what it parses for, and how it treats faults.
type parser struct {
	policy string
	mode   Mode
}

// fault returns err in Strict mode; in GRPCNames mode it logs the
// formatted warning and returns nil, and the field is left at its default.
func (p parser) fault(err error, format string, args ...any) error {
	if p.mode == Strict {
		return err
	}
	logger.Warningf("%s: "+format, append([]any{p.policy}, args...)...)
	return nil
}

// field is fault for one field's value: the error names the policy and
// what is wrong with the field.
func (p parser) field(err error) error {
	return p.fault(fmt.Errorf("%s: invalid config: %w", p.policy, err), "ignoring %v", err)
}

// present reports whether a raw field was given: absent and null are the
// default.
func present(raw json.RawMessage) bool { return len(raw) != 0 && string(raw) != "null" }

// parse checks each field of raw and sets it on cfg.
func (p parser) parse(cfg *Config, raw *fieldsOf, f Fields) error {
	var err error
	if err = p.flag("shuffleAddressList", raw.ShuffleAddressList, f&Shuffle != 0, "a pick_first option", &cfg.ShuffleAddressList); err != nil {
		return err
	}
	if err = p.flag("coalescePickers", raw.CoalescePickers, f&Coalesce != 0, "a round_robin option", &cfg.CoalescePickers); err != nil {
		return err
	}
	if f&Guard != 0 {
		if !present(raw.ChildPolicy) {
			return fmt.Errorf(`%s: invalid config: childPolicy is required: a list such as [{"weighted_round_robin": {}}, {"round_robin": {}}]`, p.policy)
		}
		// Compact, so that the config parses the same from its own JSON.
		var b bytes.Buffer
		if err := json.Compact(&b, raw.ChildPolicy); err != nil {
			return fmt.Errorf("%s: invalid config: childPolicy: %v", p.policy, err)
		}
		cfg.ChildPolicy = b.Bytes()
		if cfg.OrphanTimeout, cfg.orphan, err = p.duration("orphanTimeout", raw.OrphanTimeout, orphanLimits); err != nil {
			return err
		}
		if present(raw.Orphans) {
			var s string
			if json.Unmarshal(raw.Orphans, &s) != nil {
				s = string(raw.Orphans)
			}
			if s == "reclaim" || s == "report" {
				cfg.Orphans = s
			} else if err := p.field(fmt.Errorf(`orphans %q: want "reclaim" or "report"`, s)); err != nil {
				return err
			}
		}
	} else if p.mode == Strict {
		for _, g := range []struct {
			name string
			raw  json.RawMessage
		}{{"childPolicy", raw.ChildPolicy}, {"orphanTimeout", raw.OrphanTimeout}, {"orphans", raw.Orphans}} {
			if g.raw != nil {
				return fmt.Errorf("%s: invalid config: unknown field %q (a leakproof_guard option)", p.policy, g.name)
			}
		}
	}
	if cfg.DrainTimeout, cfg.drain, err = p.duration("drainTimeout", raw.DrainTimeout, drainLimits); err != nil {
		return err
	}
	if cfg.ReresolveInterval, cfg.reresolve, err = p.duration("reresolveInterval", raw.ReresolveInterval, reresolveLimits); err != nil {
		return err
	}
	if present(raw.TraceRingSize) {
		var n int
		switch {
		case json.Unmarshal(raw.TraceRingSize, &n) != nil:
			err = fmt.Errorf("traceRingSize %s: want a whole number between 0 and %d", raw.TraceRingSize, MaxTraceRingSize)
		case n < 0 || n > MaxTraceRingSize:
			err = fmt.Errorf("traceRingSize %d must be between 0 and %d", n, MaxTraceRingSize)
		default:
			cfg.TraceRingSize = &n
		}
		if err != nil {
			if err := p.field(err); err != nil {
				return err
			}
		}
	}
	return nil
}

// flag parses a boolean field that only some policies take (mine).
func (p parser) flag(name string, raw json.RawMessage, mine bool, whose string, v *bool) error {
	if !present(raw) {
		return nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return p.field(fmt.Errorf("%s %s: want true or false", name, raw))
	}
	if b && !mine {
		return p.field(fmt.Errorf("%s is %s", name, whose))
	}
	*v = b
	return nil
}

// limits bound a duration field.
type limits struct {
	min, max time.Duration
	omit     string // what omitting the field means, for the error
}

var (
	drainLimits     = limits{time.Nanosecond, MaxDrainTimeout, fmt.Sprintf("omit it for the default %v", subconn.DefaultDrainTimeout)}
	orphanLimits    = limits{time.Nanosecond, MaxOrphanTimeout, fmt.Sprintf("omit it for the default %v", subconn.DefaultOrphanTimeout)}
	reresolveLimits = limits{MinReresolveInterval, MaxReresolveInterval, "omit it to leave re-resolution to grpc"}
)

// duration parses a duration field: a Go duration string within lim. It
// returns the string as given and its value, or "" and 0 for an absent
// field (and, in GRPCNames mode, a bad one).
func (p parser) duration(name string, raw json.RawMessage, lim limits) (string, time.Duration, error) {
	if !present(raw) {
		return "", 0, nil
	}
	d, s, err := parseDuration(name, raw, lim)
	if err != nil {
		return "", 0, p.field(err)
	}
	return s, d, nil
}

// parseDuration is the one parser of the configs' durations.
func parseDuration(name string, raw json.RawMessage, lim limits) (time.Duration, string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, "", fmt.Errorf(`%s %s: want a Go duration such as "30s"`, name, raw)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, "", fmt.Errorf("%s %q: %v", name, s, err)
	}
	if d < lim.min || d > lim.max {
		if lim.min <= time.Nanosecond {
			return 0, "", fmt.Errorf("%s %v must be positive and at most %v (%s)", name, d, lim.max, lim.omit)
		}
		return 0, "", fmt.Errorf("%s %v must be between %v and %v (%s)", name, d, lim.min, lim.max, lim.omit)
	}
	return d, s, nil
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

// Orphan returns the guard's parsed orphanTimeout and orphans, each its
// default where the config does not set it.
func (c *Config) Orphan() (time.Duration, subconn.OrphanMode) {
	d := c.orphan
	if d == 0 {
		d = subconn.DefaultOrphanTimeout
	}
	if c.Orphans == "report" {
		return d, subconn.ReportOrphans
	}
	return d, subconn.ReclaimOrphans
}

// IsDefault reports whether c sets nothing.
func (c *Config) IsDefault() bool {
	return !c.ShuffleAddressList && !c.CoalescePickers && c.ChildPolicy == nil && c.OrphanTimeout == "" && c.Orphans == "" &&
		c.DrainTimeout == "" && c.TraceRingSize == nil && c.ReresolveInterval == ""
}
