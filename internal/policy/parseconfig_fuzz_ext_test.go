package policy_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/guard"
	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/policy"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"
)

// fuzzedPolicies names every leakproof policy whose ParseConfig the fuzz
// target feeds, through grpc's registry as a service config reaches it.
// A new policy is added here when it is registered.
var fuzzedPolicies = []string{
	pickfirst.Name,
	roundrobin.Name,
	guard.Name,
}

// FuzzParseConfig feeds arbitrary bytes to every policy's ParseConfig. Bad
// input is an error that names the policy, never a panic; input that is
// accepted is valid JSON (or nothing), within the documented limits, and
// parses back to the same config from its own JSON.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, ` {} `,
		`{"shuffleAddressList":true,"drainTimeout":"30s","traceRingSize":512}`,
		`{"coalescePickers":true,"drainTimeout":"30s","traceRingSize":512}`,
		`{"drainTimeout":"1h30m"}`, `{"drainTimeout":"0s"}`, `{"drainTimeout":"-1s"}`,
		`{"drainTimeout":"25h"}`, `{"drainTimeout":"forever"}`, `{"drainTimeout":5}`,
		`{"traceRingSize":0}`, `{"traceRingSize":-1}`, `{"traceRingSize":1048577}`, `{"traceRingSize":1.5}`,
		`{"traceRingSize":null}`, `{"bogus":1}`, `[1,2]`, `"s"`, `{"drainTimeout":"1s"} {}`,
		`{"drainTimeout":"1s"}}`, `{"drainTimeout":"1s"}]`, `{`, `{"DrainTimeout":"2s"}`,
		`{"reresolveInterval":"30s"}`, `{"reresolveInterval":"999ms"}`, `{"reresolveInterval":"25h"}`,
		`{"childPolicy":[{"round_robin":{}}]}`, `{"childPolicy": [ {"pick_first": {"shuffleAddressList": true}} ], "orphans": "report"}`,
		`{"childPolicy":[{"nope":{}},{"round_robin":null}],"orphanTimeout":"30s","orphans":"reclaim","drainTimeout":"1s","traceRingSize":8}`,
		`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"0s"}`, `{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"25h"}`,
		`{"childPolicy":[{"round_robin":{}}],"orphans":"ignore"}`, `{"childPolicy":[]}`, `{"childPolicy":[{"round_robin":{}}]}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		for _, name := range fuzzedPolicies {
			p, ok := balancer.Get(name).(balancer.ConfigParser)
			if !ok {
				t.Fatalf("%s is not registered with a config parser", name)
			}
			cfg, err := p.ParseConfig(json.RawMessage(js))
			_, err2 := p.ParseConfig(json.RawMessage(js))
			if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
				t.Fatalf("%s: parsing %q twice: %v, then %v", name, js, err, err2)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), name+": ") {
					t.Fatalf("%s: error %q for %q does not name the policy", name, err, js)
				}
				continue
			}
			if cfg == nil {
				t.Fatalf("%s: no config and no error for %q", name, js)
			}
			blank := len(bytes.TrimSpace(js)) == 0 || string(bytes.TrimSpace(js)) == "null"
			if !blank && !json.Valid(js) {
				t.Fatalf("%s: accepted %q, which is not JSON", name, js)
			}
			checkAccepted(t, name, cfg, js)
			// The accepted config, printed as JSON, parses back the same.
			again, err := json.Marshal(cfg)
			if err != nil {
				t.Fatalf("%s: marshal %+v: %v", name, cfg, err)
			}
			cfg2, err := p.ParseConfig(again)
			if err != nil || !reflect.DeepEqual(cfg, cfg2) {
				t.Fatalf("%s: %q parsed as %+v; its JSON %s parses as %+v, %v", name, js, cfg, again, cfg2, err)
			}
		}
	})
}

// checkAccepted checks an accepted config against the limits each policy
// documents.
func checkAccepted(t *testing.T, name string, lbc serviceconfig.LoadBalancingConfig, js []byte) {
	t.Helper()
	switch name {
	case guard.Name:
		checkGuardAccepted(t, lbc, js)
	case pickfirst.Name, roundrobin.Name:
		cfg, err := policy.ConfigOf(name, lbc)
		if err != nil {
			t.Fatalf("%s: accepted %q as a %T: %v", name, js, lbc, err)
		}
		if d := cfg.DrainTimeout; d != "" {
			v, err := time.ParseDuration(d)
			if err != nil || v <= 0 || v > policy.MaxDrainTimeout {
				t.Fatalf("%s: accepted drainTimeout %q from %q", name, d, js)
			}
		}
		if d := cfg.ReresolveInterval; d != "" {
			v, err := time.ParseDuration(d)
			if err != nil || v < policy.MinReresolveInterval || v > policy.MaxReresolveInterval || v != cfg.Reresolve() {
				t.Fatalf("%s: accepted reresolveInterval %q (parsed %v) from %q", name, d, cfg.Reresolve(), js)
			}
		} else if cfg.Reresolve() != 0 {
			t.Fatalf("%s: reresolve %v with no reresolveInterval from %q", name, cfg.Reresolve(), js)
		}
		if n := cfg.TraceRingSize; n != nil && (*n < 0 || *n > policy.MaxTraceRingSize) {
			t.Fatalf("%s: accepted traceRingSize %d from %q", name, *n, js)
		}
		if cfg.ShuffleAddressList && name != pickfirst.Name {
			t.Fatalf("%s: accepted shuffleAddressList from %q", name, js)
		}
		if cfg.CoalescePickers && name != roundrobin.Name {
			t.Fatalf("%s: accepted coalescePickers from %q", name, js)
		}
	default:
		t.Fatalf("%s: no limits to check; add them here", name)
	}
}

// checkGuardAccepted checks an accepted leakproof_guard config against its
// documented limits, read from the config's own JSON (the parsed config is
// the guard's own type).
func checkGuardAccepted(t *testing.T, lbc serviceconfig.LoadBalancingConfig, js []byte) {
	t.Helper()
	out, err := json.Marshal(lbc)
	if err != nil {
		t.Fatalf("%s: marshal the config accepted from %q: %v", guard.Name, js, err)
	}
	var c struct {
		ChildPolicy       []map[string]json.RawMessage
		OrphanTimeout     *string
		Orphans           *string
		DrainTimeout      *string
		ReresolveInterval *string
		TraceRingSize     *int
	}
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("%s: accepted %q, whose JSON %s is not a guard config: %v", guard.Name, js, out, err)
	}
	if len(c.ChildPolicy) == 0 {
		t.Fatalf("%s: accepted %q without a child policy", guard.Name, js)
	}
	positive := func(field string, s *string, hi time.Duration) {
		if s == nil {
			return
		}
		if v, err := time.ParseDuration(*s); err != nil || v <= 0 || v > hi {
			t.Fatalf("%s: accepted %s %q from %q", guard.Name, field, *s, js)
		}
	}
	positive("orphanTimeout", c.OrphanTimeout, guard.MaxOrphanTimeout)
	positive("drainTimeout", c.DrainTimeout, policy.MaxDrainTimeout)
	if s := c.ReresolveInterval; s != nil {
		if v, err := time.ParseDuration(*s); err != nil || v < policy.MinReresolveInterval || v > policy.MaxReresolveInterval {
			t.Fatalf("%s: accepted reresolveInterval %q from %q", guard.Name, *s, js)
		}
	}
	if s := c.Orphans; s != nil && *s != "reclaim" && *s != "report" {
		t.Fatalf("%s: accepted orphans %q from %q", guard.Name, *s, js)
	}
	if n := c.TraceRingSize; n != nil && (*n < 0 || *n > policy.MaxTraceRingSize) {
		t.Fatalf("%s: accepted traceRingSize %d from %q", guard.Name, *n, js)
	}
}
