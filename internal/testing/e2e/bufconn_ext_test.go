package e2e_test

import (
	"context"
	"net"
	"testing"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"
)

// TestBufconnEmptyAddress: "passthrough:///" resolves to one empty address,
// and a custom dialer connects it anywhere (here, grpc's in-memory bufconn
// listener, the pattern many Go test suites use). grpc's policies accept the
// empty address; leakproof's must too, and must still own the socket.
func TestBufconnEmptyAddress(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	dial := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	for _, policy := range []string{pickfirst.Name, roundrobin.Name} {
		t.Run(policy, func(t *testing.T) {
			cc, err := grpc.NewClient("passthrough:///",
				grpc.WithContextDialer(subconn.Dialer(dial)),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultServiceConfig(e2e.ServiceConfig(policy, "")))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
			defer cancel()
			if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
				t.Fatalf("Check over passthrough:/// with %s: %v", policy, err)
			}
			var sockets int
			for _, m := range subconn.Managers() {
				if m.Target() != "passthrough:///" || m.Inspect().Closed {
					continue
				}
				for _, sc := range m.Snapshot() {
					sockets += len(sc.Sockets)
				}
			}
			if sockets != 1 {
				t.Fatalf("%s: the channel's manager owns %d sockets, want 1", policy, sockets)
			}
		})
	}
}
