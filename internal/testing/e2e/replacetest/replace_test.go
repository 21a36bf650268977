// Package replacetest checks ReplaceGRPCPolicy in a test binary of its own:
// the replacement is process-wide and cannot be undone.
package replacetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/credentials/insecure"
)

func init() {
	pickfirst.ReplaceGRPCPolicy()
	roundrobin.ReplaceGRPCPolicy()
}

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// managed reports whether a leakproof manager serves target.
func managed(target string) bool {
	for _, m := range subconn.Managers() {
		if m.Target() == target {
			return true
		}
	}
	return false
}

func TestGRPCNamesGetLeakproofPolicies(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	for name, sc := range map[string]string{
		"no config (grpc's default, pick_first)": `{}`,
		"round_robin":                            e2e.ServiceConfig("round_robin", ""),
		"pick_first with grpc's own option":      e2e.ServiceConfig("pick_first", `{"shuffleAddressList":true}`),
	} {
		t.Run(name, func(t *testing.T) {
			// Overlapping endpoints: grpc's round_robin would open two
			// sockets to a; the replacement opens one.
			cl := e2e.Dial(t, sc, e2e.EndpointState([]string{a}, []string{a, b}), e2e.Options{})
			if _, err := cl.EchoOK(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !managed(cl.Target) {
				t.Fatalf("%s: the channel's subchannels are not managed by leakproof", name)
			}
			if max := e2e.MaxSockets(t, 100*time.Millisecond, a); max[a] > 1 {
				t.Fatalf("%s: %d sockets to a shared backend", name, max[a])
			}
			cl.CC.Close()
			cl.Trace.CheckClean(t)
		})
	}
}

// TestGRPCNamesAcceptWhatGRPCAccepts: under grpc's names every service
// config grpc's own policies accept must still build a working channel,
// unknown fields and all; leakproof's own names stay strict (see the
// policies' TestParseConfig).
func TestGRPCNamesAcceptWhatGRPCAccepts(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	for _, sc := range []string{
		`{"loadBalancingConfig":[{"pick_first":{"shuffleAddressList":true,"someNewerField":1}}]}`,
		`{"loadBalancingConfig":[{"pick_first":{"LoadBalancingConfig":null}}]}`,
		`{"loadBalancingConfig":[{"round_robin":{"someField":1}}]}`,
		`{"loadBalancingConfig":[{"round_robin":""}]}`,
		`{"loadBalancingConfig":[{"round_robin":{"drainTimeout":"forever"}}]}`,
	} {
		cl := e2e.Dial(t, sc, e2e.AddrState(bs[0].Addr()), e2e.Options{})
		if _, err := cl.EchoOK(context.Background()); err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		if !managed(cl.Target) {
			t.Fatalf("%s: the channel's subchannels are not managed by leakproof", sc)
		}
		cl.CC.Close()
	}
	// What grpc's pick_first rejects stays rejected.
	if _, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":""}]}`)); err == nil {
		t.Error(`{"pick_first":""} was accepted; grpc's pick_first rejects it`)
	}
}

// TestGRPCRoundRobinParsesNoConfigToNil: grpc's round_robin has no config
// parser, so its parents (wrrlocality, priority, cds) hand it nil configs and
// compare child configs against nil. The replacement parses a config that
// sets nothing to nil too, and keeps one that sets its own options.
func TestGRPCRoundRobinParsesNoConfigToNil(t *testing.T) {
	p := balancer.Get("round_robin").(balancer.ConfigParser)
	for _, js := range []string{`{}`, `null`, `""`, `{"unknown":1}`} {
		if cfg, err := p.ParseConfig(json.RawMessage(js)); err != nil || cfg != nil {
			t.Errorf("round_robin ParseConfig(%s) = %v, %v; want nil, nil", js, cfg, err)
		}
	}
	if cfg, err := p.ParseConfig(json.RawMessage(`{"drainTimeout":"2s"}`)); err != nil || cfg == nil {
		t.Errorf(`round_robin ParseConfig({"drainTimeout":"2s"}) = %v, %v; want leakproof's config`, cfg, err)
	}
}
