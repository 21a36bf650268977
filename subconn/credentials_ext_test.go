package subconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// tlsBackend starts a TLS backend that sends a GOAWAY every 150ms, and
// returns it with credentials that trust it.
func tlsBackend(t *testing.T) (*testbackend.Backend, credentials.TransportCredentials) {
	t.Helper()
	ca, err := testbackend.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	bs := e2e.StartBackends(t, 1, testbackend.TLS(ca), testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      150 * time.Millisecond,
		MaxConnectionAgeGrace: 50 * time.Millisecond,
	}))
	return bs[0], ca.ClientCredentials()
}

// TestGoAwayUnderTLSIsRead: through subconn.Credentials, a GOAWAY under TLS
// is read from the decrypted frames, with its code (cause goaway), and an
// RST is still told from the socket; without it the same GOAWAY is only
// inferred.
func TestGoAwayUnderTLSIsRead(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	b, creds := tlsBackend(t)
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		want  trace.Cause
	}{
		{"wrapped", subconn.Credentials(creds), trace.CauseGoAway},
		{"bare", creds, trace.CauseGoAwayInferred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, ""), e2e.AddrState(b.Addr()), e2e.Options{
				DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(tc.creds)},
			})
			ev := c.Trace.WaitFor(t, "two GOAWAYs", func(ev []trace.Event) bool {
				if _, err := c.EchoOK(context.Background()); err != nil {
					t.Fatalf("RPC failed during GOAWAYs: %v", err)
				}
				return len(lossesWith(t, ev, trace.KindGoAway, tc.want)) >= 2
			})
			other := trace.CauseGoAwayInferred
			if tc.want == other {
				other = trace.CauseGoAway
			}
			if n := len(lossesWith(t, ev, trace.KindGoAway, other)); n != 0 {
				t.Errorf("%d GOAWAYs with cause %s, want every one %s\n%s", n, other, tc.want, e2e.Format(ev))
			}
			c.CC.Close()
			c.Trace.CheckClean(t)
		})
	}
}

// TestResetAndCloseUnderTLSAreTold: through subconn.Credentials, an RST
// under TLS is a reset, and a server that stops (TLS close_notify, then
// FIN) closed the connection: neither is a GOAWAY, inferred or not.
func TestResetAndCloseUnderTLSAreTold(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	ca, err := testbackend.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	bs := e2e.StartBackends(t, 1, testbackend.TLS(ca))
	c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, ""), e2e.AddrState(bs[0].Addr()), e2e.Options{
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(subconn.Credentials(ca.ClientCredentials()))},
	})
	c.WaitServed(bs[0].Addr())
	if n := bs[0].ResetConns(); n != 1 {
		t.Fatalf("reset %d connections, want 1", n)
	}
	c.Trace.WaitFor(t, "conn_lost after RST", func(ev []trace.Event) bool {
		return len(lossesWith(t, ev, trace.KindConnLost, trace.CauseReset)) == 1
	})
	c.WaitServed(bs[0].Addr())
	bs[0].Stop()
	ev := c.Trace.WaitFor(t, "conn_lost after Stop", func(ev []trace.Event) bool {
		return len(lossesWith(t, ev, trace.KindConnLost, trace.CauseEOF))+len(lossesWith(t, ev, trace.KindConnLost, trace.CauseReset)) == 2
	})
	if n := count(ev, trace.KindGoAway); n != 0 {
		t.Errorf("%d GOAWAYs seen, want none\n%s", n, e2e.Format(ev))
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}

// Credentials(nil) leaves grpc.NewClient to refuse the missing credentials
// with an error; wrapped, they made it panic.
func TestCredentialsNilIsRefusedByGRPC(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("grpc.NewClient with subconn.Credentials(nil) panicked: %v", r)
		}
	}()
	cc, err := grpc.NewClient("passthrough:///127.0.0.1:1", grpc.WithTransportCredentials(subconn.Credentials(nil)))
	if err == nil {
		cc.Close()
		t.Fatal("grpc.NewClient with subconn.Credentials(nil) succeeded, want its error for missing credentials")
	}
}
