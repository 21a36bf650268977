package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
)

// TestCoreIncident38871 replays grpc/grpc#38871 (gRPC C-core: two
// subchannels to one backend under pick_first, both lose their connections
// — GOAWAY, then "Socket closed" — and the second one's socket is never
// released). Here two holders share one backend (overlapping endpoints under
// round_robin, and a repeated address under pick_first); the backend sends
// GOAWAY, then its sockets are closed; then it is removed and the channel
// closed. Every subchannel must reach destroy in the trace with every socket
// it opened closed, and no socket to the backend may remain.
func TestCoreIncident38871(t *testing.T) {
	for policy, state := range map[string]func(a, b string) resolver.State{
		roundrobin.Name: func(a, b string) resolver.State { return e2e.EndpointState([]string{a}, []string{a, b}) },
		pickfirst.Name:  func(a, b string) resolver.State { return e2e.AddrState(a, a, b) },
	} {
		t.Run(policy, func(t *testing.T) {
			t.Cleanup(leaktest.Check(t))
			bs := e2e.StartBackends(t, 2)
			a, b := bs[0].Addr(), bs[1].Addr()
			cl := e2e.Dial(t, e2e.ServiceConfig(policy, ""), state(a, b), e2e.Options{})
			cl.WaitServed(a)
			if policy == roundrobin.Name {
				shared := false
				for _, m := range subconn.Managers() {
					for _, s := range m.Snapshot() {
						shared = shared || (s.Key == a && s.Refs == 2)
					}
				}
				if !shared {
					t.Fatal("the two endpoints do not share one subchannel to the backend")
				}
			}

			// GOAWAY: the backend restarts with a short MaxConnectionAge.
			if err := bs[0].SetKeepalive(keepalive.ServerParameters{MaxConnectionAge: 100 * time.Millisecond, MaxConnectionAgeGrace: 50 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			cl.Trace.WaitFor(t, "a GOAWAY on the shared backend", func(ev []trace.Event) bool {
				cl.EchoOK(context.Background())
				for _, e := range ev {
					if e.Kind == trace.KindGoAway && e.Key == a {
						return true
					}
				}
				return false
			})
			// Socket closed: the backend resets its connections.
			if err := bs[0].SetKeepalive(keepalive.ServerParameters{}); err != nil {
				t.Fatal(err)
			}
			cl.WaitServed(a)
			bs[0].ResetConns()
			cl.Trace.WaitFor(t, "a lost connection on the shared backend", func(ev []trace.Event) bool {
				for _, e := range ev {
					if e.Kind == trace.KindConnLost && e.Key == a {
						return true
					}
				}
				return false
			})

			cl.R.UpdateState(e2e.AddrState(b))
			e2e.WaitSockets(t, a, 0, 2*time.Second)
			cl.CC.Close()
			rep := cl.Trace.CheckClean(t)
			ev := cl.Trace.Events()
			opened, closed := 0, 0
			for _, e := range ev {
				if e.Key != a {
					continue
				}
				switch e.Kind {
				case trace.KindSocketOpen:
					opened++
				case trace.KindSocketClose:
					closed++
				}
			}
			if opened < 2 || opened != closed {
				t.Fatalf("backend a: %d sockets opened, %d closed (want >= 2, all closed)\n%s", opened, closed, e2e.Format(ev))
			}
			t.Logf("%d subchannels, all destroyed; %d sockets to the shared backend, all closed", rep.Subchannels, opened)
		})
	}
}
