package replacetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver/manual"
)

// TestReplaceReachesParsedConfigsOnly shows the rule ReplaceGRPCPolicy's doc
// states: a service config parsed after the call gets leakproof's policy,
// including "{}" (no policy named, so pick_first); a channel with no service
// config at all uses the default grpc parsed in its own init, before any
// other package's init could replace pick_first, and stays on grpc's
// pick_first.
func TestReplaceReachesParsedConfigsOnly(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	for i, tc := range []struct {
		name    string
		opts    []grpc.DialOption
		managed bool
	}{
		{"no service config", nil, false},
		{`grpc.WithDefaultServiceConfig("{}")`, []grpc.DialOption{grpc.WithDefaultServiceConfig(`{}`)}, true},
	} {
		r := manual.NewBuilderWithScheme(fmt.Sprintf("nosc%d", i))
		r.InitialState(e2e.AddrState(bs[0].Addr()))
		target := r.Scheme() + ":///test"
		cc, err := grpc.NewClient(target, append(tc.opts, grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := echov1.NewEchoServiceClient(cc).Echo(context.Background(), &echov1.EchoRequest{}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := managed(target); got != tc.managed {
			t.Errorf("%s: channel on leakproof's pick_first = %v, want %v", tc.name, got, tc.managed)
		}
		cc.Close()
	}
}
