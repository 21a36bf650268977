package dnsserver_test

import (
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	grpcdns "google.golang.org/grpc/resolver/dns"
)

// resolvingTimeout bounds one resolution of grpc's dns resolver in these
// tests (grpc's default is 30 s): the NoAnswer test waits for it.
const resolvingTimeout = time.Second

func TestMain(m *testing.M) {
	// Set once, before any resolver exists: grpc's setters are not safe
	// for concurrent use. ResolveNow is then answered at once.
	grpcdns.SetMinResolutionInterval(time.Millisecond)
	grpcdns.SetResolvingTimeout(resolvingTimeout)
	leaktest.VerifyTestMain(m)
}
