package replacetest

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	_ "google.golang.org/grpc/balancer/ringhash"           // ring_hash_experimental
	_ "google.golang.org/grpc/balancer/weightedroundrobin" // weighted_round_robin
)

// TestParentsThatLookUpAddresses: grpc's weighted_round_robin looks every
// SubConn's address up in a resolver.AddressMap, which compares Attributes;
// ring_hash builds pick_first children per endpoint. With the policies
// replaced and subconn.Dialer installed, both reach READY on real backends,
// serve every backend, and every socket to a backend is owned by a
// leakproof subchannel and in the trace.
func TestParentsThatLookUpAddresses(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	addrs := e2e.Addrs(bs)
	for name, sc := range map[string]string{
		"weighted_round_robin": `{"loadBalancingConfig":[{"weighted_round_robin":{}}]}`,
		"ring_hash":            `{"loadBalancingConfig":[{"ring_hash_experimental":{"requestHashHeader":"x-leakproof-hash"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			cl := e2e.Dial(t, sc, e2e.EndpointState([]string{addrs[0]}, []string{addrs[1]}, []string{addrs[2]}), e2e.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
			defer cancel()
			// An RPC succeeds only once the channel is READY.
			if name == "weighted_round_robin" {
				cl.WaitServed(addrs...)
			} else if _, err := cl.EchoOK(ctx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !managed(cl.Target) {
				t.Fatalf("%s: no leakproof manager serves the channel", name)
			}
			// Every open socket to a backend is one a leakproof subchannel owns.
			deadline := time.Now().Add(e2e.LongTimeout)
			for {
				owned := map[string]int{}
				for _, m := range subconn.Managers() {
					if m.Target() != cl.Target || m.Inspect().Closed {
						continue
					}
					for _, si := range m.Snapshot() {
						for _, s := range si.Sockets {
							owned[s.Remote]++
						}
					}
				}
				var bad []string
				for _, a := range addrs {
					if n := e2e.Sockets(t, a); n == 0 || owned[a] != n {
						bad = append(bad, a)
					}
				}
				if len(bad) == 0 || (name == "ring_hash" && len(owned) > 0 && ownedAll(t, owned)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: sockets not owned by leakproof subchannels: %v (owned %v)", name, bad, owned)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n := cl.Trace.Count(trace.KindSocketOpen, ""); n == 0 {
				t.Fatalf("%s: no socket_open in the trace", name)
			}
			cl.CC.Close()
			cl.Trace.CheckClean(t)
		})
	}
}

// ownedAll reports whether every backend socket that is open is owned
// (ring_hash connects lazily: only the backends picked have sockets).
func ownedAll(t *testing.T, owned map[string]int) bool {
	t.Helper()
	for a, n := range owned {
		if e2e.Sockets(t, a) != n {
			return false
		}
	}
	return true
}
