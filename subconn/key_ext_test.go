package subconn_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/resolver"
)

// mapped returns addr ("127.0.0.1:P") spelled as an IPv4-mapped IPv6
// address, "[::ffff:127.0.0.1]:P": the same backend, the same socket
// (Linux dials it over AF_INET).
func mapped(t *testing.T, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("[::ffff:%s]:%s", host, port)
}

// TestTwoSpellingsOneSubchannel: a backend listed as 127.0.0.1:P and as
// [::ffff:127.0.0.1]:P is one key: one subchannel and one socket in both
// policies, released when both spellings are gone. grpc's round_robin, in
// the same run, opens one socket per spelling.
func TestTwoSpellingsOneSubchannel(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	am := mapped(t, a)

	for _, tc := range []struct {
		policy string
		state  resolver.State
		after  resolver.State // one spelling left
	}{
		{pickfirst.Name, e2e.AddrState(am, a, b), e2e.AddrState(a, b)},
		{roundrobin.Name, e2e.EndpointState([]string{a}, []string{am}, []string{b}), e2e.EndpointState([]string{am}, []string{b})},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			cl := e2e.Dial(t, e2e.ServiceConfig(tc.policy, ""), tc.state, e2e.Options{})
			cl.WaitServed(a) // a backend reports 127.0.0.1:P whichever spelling dialed it
			if max := e2e.MaxSockets(t, 150*time.Millisecond, a); max[a] != 1 {
				t.Errorf("sockets to %s listed as %s and %s: %d, want 1", a, a, am, max[a])
			}
			if got := cl.Trace.Count(trace.KindCreate, a); got != 1 {
				t.Errorf("subchannels created for key %s: %d, want 1\n%s", a, got, e2e.Format(cl.Trace.Events()))
			}
			if got := cl.Trace.Count(trace.KindCreate, am); got != 0 {
				t.Errorf("a subchannel was keyed by the mapped spelling %s", am)
			}
			cl.R.UpdateState(tc.after)
			// pick_first shuts the first spelling's SubConn down before it
			// asks for the second's, so the subchannel may be made anew:
			// wait for the backend to serve, then count.
			cl.WaitServed(a)
			if max := e2e.MaxSockets(t, 100*time.Millisecond, a); max[a] != 1 {
				t.Errorf("sockets to %s with one spelling left: %d, want 1 (still listed)\n%s", a, max[a], e2e.Format(cl.Trace.Events()))
			}
			cl.R.UpdateState(e2e.AddrState(b))
			e2e.WaitSockets(t, a, 0, e2e.LongTimeout) // removed while the channel is open
			cl.CC.Close()
			e2e.WaitSockets(t, b, 0, e2e.LongTimeout)
			cl.Trace.CheckClean(t)
		})
	}

	t.Run("grpc round_robin", func(t *testing.T) {
		cl := e2e.Dial(t, e2e.ServiceConfig("round_robin", ""), e2e.EndpointState([]string{a}, []string{am}), e2e.Options{NoDialer: true})
		cl.WaitServed(a)
		if max := e2e.MaxSockets(t, 150*time.Millisecond, a); max[a] != 2 {
			t.Errorf("grpc's round_robin: %d sockets to %s listed twice, measured 2 when this was written", max[a], a)
		}
		cl.CC.Close()
		e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	})
}
