package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc/resolver"
)

// TestComparedWithGRPC measures, for leakproof_round_robin and grpc-go's
// round_robin on the same backends, what README's comparison table states.
func TestComparedWithGRPC(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, c := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	ours := e2e.ServiceConfig(roundrobin.Name, `{"drainTimeout":"300ms"}`)
	grpcs := e2e.ServiceConfig("round_robin", "")

	sockets := func(sc string, state resolver.State, o e2e.Options) map[string]int {
		cl := e2e.Dial(t, sc, state, o)
		cl.WaitServed(a, b)
		max := e2e.MaxSockets(t, 200*time.Millisecond, a, b, c)
		cl.CC.Close()
		for _, addr := range []string{a, b, c} {
			e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
		}
		return max
	}

	t.Run("overlapping endpoints", func(t *testing.T) {
		state := e2e.EndpointState([]string{a}, []string{a, b}, []string{b})
		if got := sockets(ours, state, e2e.Options{}); got[a] != 1 || got[b] != 1 {
			t.Errorf("leakproof_round_robin: sockets %v, want 1 to a and 1 to b", got)
		}
		if got := sockets(grpcs, state, e2e.Options{NoDialer: true}); got[a] != 2 {
			t.Errorf("grpc's round_robin: sockets %v; README says 2 to a (one per endpoint)", got)
		}
	})
	t.Run("repeated addresses", func(t *testing.T) {
		state := e2e.AddrState(a, a, b)
		if got := sockets(ours, state, e2e.Options{}); got[a] != 1 || got[b] != 1 {
			t.Errorf("leakproof_round_robin: sockets %v, want 1 each", got)
		}
		if got := sockets(grpcs, state, e2e.Options{NoDialer: true}); got[a] != 1 || got[b] != 1 {
			t.Errorf("grpc's round_robin: sockets %v; README says 1 each", got)
		}
	})
	t.Run("removal with a stream that never ends", func(t *testing.T) {
		open := func(sc string, o e2e.Options) (closedWithin time.Duration) {
			cl := e2e.Dial(t, sc, e2e.AddrState(a), o)
			cl.WaitServed(a)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hold, err := cl.Echo.Hold(ctx, &echov1.HoldRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := hold.Recv(); err != nil {
				t.Fatal(err)
			}
			cl.R.UpdateState(e2e.AddrState(b))
			start := time.Now()
			for time.Since(start) < 2*time.Second {
				if e2e.Sockets(t, a) == 0 {
					return time.Since(start)
				}
				time.Sleep(10 * time.Millisecond)
			}
			return -1
		}
		if d := open(ours, e2e.Options{}); d < 0 || d > time.Second {
			t.Errorf("leakproof_round_robin with drainTimeout 300ms: socket to the removed backend closed after %v, want ~300ms", d)
		}
		if d := open(grpcs, e2e.Options{NoDialer: true}); d >= 0 {
			t.Errorf("grpc's round_robin closed the socket after %v; README says it stays open until the stream ends", d)
		}
		// With the streams cancelled, grpc's socket closes too.
		e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	})
}
