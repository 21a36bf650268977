package roundrobin_test

import (
	"slices"
	"testing"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
)

// TestReferencesAreNamedAfterTheirEndpoint: each endpoint's references are
// held under "endpoint{addr,addr...}", so a trace or a snapshot says which
// endpoint holds a subchannel.
func TestReferencesAreNamedAfterTheirEndpoint(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	cl := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.EndpointState([]string{a, b}, []string{c}), e2e.Options{})
	cl.WaitServed(a, c)
	holders := map[string][]string{}
	for _, e := range cl.Trace.Events() {
		if e.Kind == trace.KindRef {
			holders[e.Key] = append(holders[e.Key], e.Holder)
		}
	}
	ab, onlyC := "endpoint{"+a+","+b+"}", "endpoint{"+c+"}"
	if !slices.Contains(holders[a], ab) || !slices.Contains(holders[c], onlyC) {
		t.Fatalf("holders by backend %v, want %s on %s and %s on %s", holders, ab, a, onlyC, c)
	}
	cl.CC.Close()
	cl.Trace.CheckClean(t)
}
