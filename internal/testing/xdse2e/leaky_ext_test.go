package xdse2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/testing/leakzoo"
	"github.com/leakproof/leakproof/internal/xdsplane"
	"github.com/leakproof/leakproof/leaktest"
)

// recorder is a leaktest.TestingT that keeps the failures.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestLeakyPolicyCaught: the control plane selects the deliberately leaky
// policy (it forgets a removed backend's SubConn without Shutdown) for one
// cluster and leakproof_round_robin for another, then an EDS push removes
// one backend from each. While both channels are open, leaktest's socket
// check, run as any test would run it, names the leaky cluster's removed
// backend and stays silent about leakproof's.
func TestLeakyPolicyCaught(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 4)
	leakyA, leakyB, oursA, oursB := bs[0].Addr(), bs[1].Addr(), bs[2].Addr(), bs[3].Addr()
	srv := startServer(t)
	leaky, rr := name("leaky"), name("leaky-control")
	res := func(l, o []string) xdsplane.Resources {
		return xdsplane.Merge(
			service(t, leaky, xdsplane.ClusterSpec{Name: "c-" + leaky, Policy: xdsplane.Policy{Name: leakzoo.ForgetRemoved}, Localities: one(l...)}),
			service(t, rr, xdsplane.ClusterSpec{Name: "c-" + rr, Policy: xdsplane.Policy{Name: roundrobin.Name}, Localities: one(o...)}),
		)
	}
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	publish(t, srv, res([]string{leakyA, leakyB}, []string{oursA, oursB}))
	bad := dial(t, srv, leaky, false)
	ours := dial(t, srv, rr, false)
	bad.waitServed(leakyA, leakyB)
	ours.waitServed(oursA, oursB)

	waitAcked(t, srv, xdsplane.EndpointType, publish(t, srv, res([]string{leakyB}, []string{oursB})))
	bad.waitServed(leakyB)
	ours.waitServed(oursB)

	for _, tc := range []struct {
		removed string
		leaks   bool
	}{{leakyA, true}, {oursA, false}} {
		rec := &recorder{}
		leaktest.VerifyNone(rec, base, leaktest.Backends(tc.removed), leaktest.Deadline(time.Second))
		named := lines(rec.errs, "to backend "+tc.removed)
		switch {
		case tc.leaks && len(named) == 0:
			t.Errorf("leaktest did not name %s, the backend the leaky policy forgot; it reported:\n%s", tc.removed, strings.Join(rec.errs, "\n"))
		case tc.leaks:
			t.Logf("caught: %s", named[0])
		case len(named) != 0:
			t.Errorf("leaktest named %s under %s: %s", tc.removed, roundrobin.Name, named[0])
		}
	}
	bad.CC.Close() // grpc's Close is the leaky policy's only cleanup
	ours.CC.Close()
	for _, a := range []string{leakyA, leakyB, oursA, oursB} {
		e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	}
	ours.Trace.CheckClean(t)
}
