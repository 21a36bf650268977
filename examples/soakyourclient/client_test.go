package inventory

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/soak"
	"google.golang.org/grpc"
)

// TestMain fails the package if a test leaves goroutines or descriptors
// behind.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// soakClient soaks the client under resolver res over TLS: its service
// config, its dial options, its service on every backend and its RPC as
// the load. It checks the verdict, the target the channel dialed, and
// that the load was the client's own calls, seen by its interceptor and
// served by its server.
func soakClient(t *testing.T, res soak.Resolver, faults []soak.Fault, targetPrefix string) {
	client, server := &Client{}, &Server{}
	result, err := soak.Run(context.Background(), soak.Config{
		Duration:         6 * time.Second,
		ServiceConfig:    serviceConfig,
		DialOptions:      client.DialOptions(),
		RegisterServices: server.Register,
		Load: func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := Count(ctx, cc, "widget")
			return err
		},
		Resolver: res,
		TLS:      true,
		Faults:   faults,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(result.Verdict())
	if !result.Pass {
		t.Errorf("the soak failed:\n%s", result.Verdict())
	}
	if result.Policy != "leakproof_guard:weighted_round_robin" {
		t.Errorf("policy %q, want the service config's leakproof_guard:weighted_round_robin", result.Policy)
	}
	if !strings.HasPrefix(result.Target, targetPrefix) {
		t.Errorf("the channel dialed %q, want a %s target", result.Target, targetPrefix)
	}
	seen, served := client.Calls.Load(), server.Served.Load()
	t.Logf("%d Count calls seen by the client's interceptor, %d served, %d RPCs OK by the soak", seen, served, result.RPCs.OK)
	if seen < 100 || served < 100 {
		t.Errorf("the client's interceptor saw %d Count calls and its server served %d: the load was not the client's RPC on its channel", seen, served)
	}
}

// TestSoakOverDNS resolves the backends through grpc's dns resolver and a
// DNS server the soak runs on 127.0.0.1.
func TestSoakOverDNS(t *testing.T) {
	soakClient(t, soak.ResolverDNS, []soak.Fault{soak.FaultGoAway, soak.FaultReset, soak.FaultFlap}, "dns:")
}

// TestSoakOverXDS feeds the channel from an xDS control plane the soak
// runs on 127.0.0.1, whose Cluster names the client's policy.
func TestSoakOverXDS(t *testing.T) {
	soakClient(t, soak.ResolverXDS, []soak.Fault{soak.FaultGoAway, soak.FaultReset, soak.FaultFlap, soak.FaultXDSNACK}, "xds:")
}
