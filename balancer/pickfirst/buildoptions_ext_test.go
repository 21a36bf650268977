package pickfirst_test

import (
	"net/url"
	"testing"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc/balancer"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// targetlessCC is a balancer.ClientConn whose deprecated Target panics, as
// grpc's own test ClientConn (internal/testutils.BalancerClientConn) does. A
// fake: a real channel implements Target, so only a fake can show the policy
// does not depend on it.
type targetlessCC struct{ balancer.ClientConn }

func (targetlessCC) Target() string { panic("not implemented") }
func (targetlessCC) MetricsRecorder() estats.MetricsRecorder {
	return estats.UnimplementedMetricsRecorder{}
}

// TestBuildTakesTargetFromBuildOptions: Build names the manager after
// BuildOptions.Target and never calls the deprecated ClientConn.Target.
func TestBuildTakesTargetFromBuildOptions(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	const target = "buildoptions:///pickfirst"
	b := balancer.Get(pickfirst.Name).Build(targetlessCC{}, balancer.BuildOptions{Target: resolver.Target{URL: *mustParseURL(t, target)}})
	defer b.Close()
	var found bool
	for _, m := range subconn.Managers() {
		found = found || m.Target() == target
	}
	if !found {
		t.Fatalf("no manager with target %q", target)
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
