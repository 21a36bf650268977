package e2e_test

import (
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	grpcdns "google.golang.org/grpc/resolver/dns"
)

// dnsMinResolution is grpc's dns resolver's minimum interval between
// resolutions in these tests (30 s by default), lowered through grpc's own
// setter before any channel exists.
const dnsMinResolution = 2 * time.Second

func TestMain(m *testing.M) {
	grpcdns.SetMinResolutionInterval(dnsMinResolution)
	leaktest.VerifyTestMain(m)
}
