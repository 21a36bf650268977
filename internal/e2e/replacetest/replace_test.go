// Package replacetest checks ReplaceGRPCPolicy in a test binary of its own:
// the replacement is process-wide and cannot be undone.
package replacetest

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
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
