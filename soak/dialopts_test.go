package soak

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
)

// inlinedDialer stands for a user's helper that builds an option: the
// compiler may inline grpc.WithContextDialer into it, which renames the
// closure after the helper.
func inlinedDialer() grpc.DialOption {
	return grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return nil, nil })
}

type countingHandler struct{ stats.Handler }

func TestCheckDialOptionsRefusesTakeovers(t *testing.T) {
	if err := dialOptionsReadable(); err != nil {
		t.Fatal(err)
	}
	dial := func(context.Context, string) (net.Conn, error) { return nil, nil }
	refused := []struct {
		opt  grpc.DialOption
		name string
	}{
		{grpc.WithContextDialer(dial), "grpc.WithContextDialer"},
		{inlinedDialer(), "grpc.WithContextDialer"},
		{grpc.WithDialer(nil), "grpc.WithContextDialer (or WithDialer)"},
		{grpc.WithTransportCredentials(insecure.NewCredentials()), "grpc.WithTransportCredentials"},
		{grpc.WithInsecure(), "grpc.WithInsecure"}, //nolint:staticcheck // a user may still pass it
		{grpc.WithCredentialsBundle(nil), "grpc.WithCredentialsBundle"},
		{grpc.WithResolvers(), "grpc.WithResolvers"},
		{grpc.WithDefaultServiceConfig(`{}`), "grpc.WithDefaultServiceConfig"},
		{grpc.WithDisableServiceConfig(), "grpc.WithDisableServiceConfig"},
		{wrappedOption{grpc.WithContextDialer(dial)}, "grpc.WithContextDialer"},
	}
	harmless := []grpc.DialOption{
		grpc.WithKeepaliveParams(keepalive.ClientParameters{}),
		grpc.WithChainUnaryInterceptor(),
		grpc.WithUnaryInterceptor(nil),
		grpc.WithStatsHandler(countingHandler{}),
		grpc.WithUserAgent("x"),
		grpc.WithAuthority("x"),
		grpc.WithIdleTimeout(0),
		grpc.WithMaxHeaderListSize(1 << 20),
		grpc.EmptyDialOption{},
		wrappedOption{grpc.WithUserAgent("x")},
	}
	if err := checkDialOptions(harmless); err != nil {
		t.Fatalf("checkDialOptions(harmless) = %v", err)
	}
	for _, r := range refused {
		opts := append(append([]grpc.DialOption{}, harmless...), r.opt)
		err := checkDialOptions(opts)
		if err == nil || !strings.Contains(err.Error(), r.name) || !strings.Contains(err.Error(), "DialOptions[10]") {
			t.Errorf("checkDialOptions(... %s) = %v; want an error naming DialOptions[10] and %s", r.name, err, r.name)
		}
	}
}

// grpc.NewClient panics on a nil option (it calls its apply method), so
// the soak refuses one, also inside a joined option.
// wrappedOption is a user's option type that embeds one of grpc's: it is
// screened as the option it embeds.
type wrappedOption struct{ grpc.DialOption }

// TestCheckDialOptionsRefusesOpaque: an option the soak cannot read is
// refused with an error that says which options it can read.
func TestCheckDialOptionsRefusesOpaque(t *testing.T) {
	type twoOptions struct {
		grpc.DialOption
		other grpc.DialOption
	}
	err := checkDialOptions([]grpc.DialOption{twoOptions{grpc.WithUserAgent("x"), nil}})
	if err == nil || !strings.Contains(err.Error(), "DialOptions[0]") || !strings.Contains(err.Error(), "types embedding exactly one") {
		t.Errorf("checkDialOptions(two embedded options) = %v; want DialOptions[0] refused, saying what can be screened", err)
	}
}

func TestCheckDialOptionsRefusesNil(t *testing.T) {
	var nilEmpty *grpc.EmptyDialOption
	for i, opts := range [][]grpc.DialOption{
		{grpc.WithUserAgent("x"), nil},
		{grpc.WithUserAgent("x"), nilEmpty},
		{grpc.WithUserAgent("x"), grpc.WithUserAgent("y")},
	} {
		err := checkDialOptions(opts)
		if i == 2 {
			if err != nil {
				t.Errorf("checkDialOptions(two user agents) = %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "DialOptions[1] is nil") {
			t.Errorf("checkDialOptions(%d) = %v; want DialOptions[1] is nil", i, err)
		}
	}
}

func TestGrpcFunc(t *testing.T) {
	for closure, want := range map[string]string{
		"google.golang.org/grpc.WithContextDialer.func1":                                 "WithContextDialer",
		"example.com/x.newClient.WithContextDialer.func2":                                "WithContextDialer",
		"example.com/x.TestNames.WithDialer.WithContextDialer.func8":                     "WithContextDialer",
		"gopkg.in/x.v1.WithOptions.WithTransportCredentials.func3":                       "WithTransportCredentials",
		"google.golang.org/grpc.WithKeepaliveParams.func1":                               "WithKeepaliveParams",
		"github.com/leakproof/leakproof/soak.TestX.func1.WithDefaultServiceConfig.func2": "WithDefaultServiceConfig",
	} {
		if got := grpcFunc(closure); got != want {
			t.Errorf("grpcFunc(%q) = %q, want %q", closure, got, want)
		}
	}
}
