package guard_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/balancer/guard"
	"google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/weightedroundrobin" // registers weighted_round_robin
)

func parse(js string) error {
	_, err := balancer.Get(guard.Name).(balancer.ConfigParser).ParseConfig(json.RawMessage(js))
	return err
}

func TestParseConfigAcceptsTheDocumentedConfig(t *testing.T) {
	for _, js := range []string{
		`{"childPolicy":[{"weighted_round_robin":{}},{"round_robin":{}}],"orphanTimeout":"30s","orphans":"reclaim","drainTimeout":"30s","traceRingSize":512}`,
		`{"childPolicy":[{"no_such_policy":{}},{"round_robin":{}}]}`,
		`{"childPolicy":[{"pick_first":{"shuffleAddressList":true}}],"orphans":"report"}`,
		`{"childPolicy":[{"round_robin":null}]}`,
		`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"24h"}`, // the limit is inclusive
		`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"1ns"}`,
	} {
		if err := parse(js); err != nil {
			t.Errorf("ParseConfig(%s): %v", js, err)
		}
	}
}

func TestParseConfigNamesTheField(t *testing.T) {
	for _, tc := range []struct{ js, want string }{
		{`{}`, "childPolicy is required"},
		{`null`, "childPolicy is required"},
		{`{"childPolicy":[]}`, "childPolicy: is empty"},
		{`{"childPolicy":{"round_robin":{}}}`, "childPolicy: want a list"},
		{`{"childPolicy":[{"round_robin":{},"pick_first":{}}]}`, "childPolicy: entry 0 has 2 keys"},
		{`{"childPolicy":[{"nope":{}},{"nada":{}}]}`, "childPolicy: none of the policies nope, nada is registered"},
		{`{"childPolicy":[{"weighted_round_robin":{"blackoutPeriod":"soon"}}]}`, `childPolicy: policy "weighted_round_robin" rejected its config`},
		{`{"childPolicy":[{"pick_first":{"shuffleAddressList":"yes"}}]}`, `childPolicy: policy "pick_first" rejected its config`},
		{`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"soon"}`, `orphanTimeout "soon"`},
		{`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"-1s"}`, "orphanTimeout -1s must be positive"},
		{`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"0s"}`, "orphanTimeout 0s must be positive"},
		{`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":30}`, "orphanTimeout 30: want a Go duration"},
		{`{"childPolicy":[{"round_robin":{}}],"orphanTimeout":"25h"}`, "orphanTimeout 25h0m0s must be positive and at most 24h0m0s"},
		{`{"childPolicy":[{"round_robin":{}}],"orphans":"ignore"}`, `orphans "ignore": want "reclaim" or "report"`},
		{`{"childPolicy":[{"round_robin":{}}],"orphans":true}`, `orphans "true"`},
		{`{"childPolicy":[{"round_robin":{}}],"drainTimeout":"forever"}`, `drainTimeout "forever"`},
		{`{"childPolicy":[{"round_robin":{}}],"traceRingSize":-1}`, "traceRingSize -1"},
		{`{"childPolicy":[{"round_robin":{}}],"coalescePickers":true}`, "coalescePickers is a round_robin option"},
		{`{"childPolicy":[{"round_robin":{}}],"orphanTimout":"1s"}`, `unknown field "orphanTimout"`},
		{`{"childPolicy":[{"round_robin":{}}]} {}`, "trailing data"},
		{`[1]`, "invalid config"},
	} {
		err := parse(tc.js)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), guard.Name+": ") {
			t.Errorf("ParseConfig(%s) = %v, want an error starting %q containing %q", tc.js, err, guard.Name+": ", tc.want)
		}
	}
}

// TestConfigSurvivesJSON: gRPC marshals the parsed config of a policy an
// xDS control plane selects and parses it again (cds builds the priority
// tree's config as JSON); the guard's config must come back unchanged.
func TestConfigSurvivesJSON(t *testing.T) {
	p := balancer.Get(guard.Name).(balancer.ConfigParser)
	in := `{"childPolicy": [{"weighted_round_robin": {"blackoutPeriod": "1s"}}], "orphanTimeout": "2s", "orphans": "report", "drainTimeout": "3s", "traceRingSize": 64}`
	cfg, err := p.ParseConfig(json.RawMessage(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal(parsed config): %v", err)
	}
	if want := strings.NewReplacer(" ", "").Replace(in); string(out) != want {
		t.Errorf("marshalled config %s, want %s", out, want)
	}
	if _, err := p.ParseConfig(out); err != nil {
		t.Errorf("ParseConfig(marshalled config %s): %v", out, err)
	}
}

// A guard may nest inside itself a few levels, no more: each level parses
// its child again. The error says how deep and the limit.
func TestParseConfigLimitsGuardNesting(t *testing.T) {
	nest := func(levels int) string {
		js := `{"childPolicy":[{"round_robin":{}}]}`
		for range levels - 1 {
			js = `{"childPolicy":[{"` + guard.Name + `":` + js + `}]}`
		}
		return js
	}
	if err := parse(nest(4)); err != nil {
		t.Fatalf("4 levels: %v", err)
	}
	for _, levels := range []int{5, 100} {
		err := parse(nest(levels))
		if err == nil || !strings.Contains(err.Error(), "levels deep inside itself; at most 4") {
			t.Errorf("%d levels: %v, want an error naming the limit of 4", levels, err)
		}
	}
}
