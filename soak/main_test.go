package soak_test

import (
	"testing"

	"github.com/leakproof/leakproof/leaktest"
	// grpc's policies the tests run under the guard (GuardedGRPCPolicies).
	_ "google.golang.org/grpc/balancer/leastrequest"
	_ "google.golang.org/grpc/balancer/ringhash"
	_ "google.golang.org/grpc/balancer/weightedroundrobin"
)

// The package checks itself: every soak, test and example here must leave
// goroutines and descriptors as it found them.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
