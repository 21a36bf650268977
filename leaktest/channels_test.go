package leaktest

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// TestVerifyTestMainNamesAChannelNotClosed is the user's mistake leaktest
// exists for: a test that forgets cc.Close. The report must say which
// channel (its target, policy and subchannels) before the goroutines, and
// group identical goroutine stacks instead of listing each.
func TestVerifyTestMainNamesAChannelNotClosed(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go srv.Serve(lis)
	defer srv.Stop()
	addr := lis.Addr().String()

	var cc *grpc.ClientConn
	code, out := runMain(t, func() int {
		cc, err = grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
		if err != nil {
			t.Error(err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cc.Connect()
		for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
			if !cc.WaitForStateChange(ctx, s) {
				t.Errorf("channel not READY: %v", s)
				return 1
			}
		}
		return 0 // the mistake: cc.Close() forgotten
	})
	if cc != nil {
		defer cc.Close()
	}
	t.Logf("the report, as a user sees it:\n%s", out)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{
		`a grpc channel to "passthrough:///` + addr + `" was not closed (call Close on its *grpc.ClientConn)`,
		"policy round_robin, READY, created at ",
		"1 subchannel(s): " + addr + " READY, 1 socket(s)",
		"goroutines leaked",
		"created by google.golang.org/grpc",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report does not say %q", want)
		}
	}
	// The channel comes before the goroutines, and identical stacks are one
	// group: fewer group headlines than goroutines.
	if i, j := strings.Index(out, "a grpc channel"), strings.Index(out, "goroutines leaked"); i < 0 || j < i {
		t.Error("the channel is not named before the goroutines")
	}
	m := regexp.MustCompile(`(\d+) goroutines leaked after .* in (\d+) group\(s\)`).FindStringSubmatch(out)
	if m == nil || m[1] <= m[2] && len(m[1]) == len(m[2]) {
		t.Errorf("goroutines not grouped: %v", m)
	}
	if strings.Contains(out, "Goroutine ") {
		t.Error("the report lists goleak's goroutines one by one")
	}
}
