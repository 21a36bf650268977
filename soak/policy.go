package soak

import (
	"fmt"
	"strings"

	"github.com/leakproof/leakproof/balancer/guard"
	"google.golang.org/grpc/balancer"
)

// guardPrefix, followed by a registered policy's name, names that policy run
// under leakproof_guard: "leakproof_guard:weighted_round_robin".
const guardPrefix = guard.Name + ":"

// GuardedGRPCPolicies are grpc-go's policies the soak runs under the guard
// in its tests and lists in its help. Importing soak does not register
// them: the soak sees the policies the user's program registers, no more
// (grpc's balancer/weightedroundrobin, balancer/ringhash and
// balancer/leastrequest register these; the leakproof CLI imports them).
var GuardedGRPCPolicies = []string{
	guardPrefix + "round_robin",
	guardPrefix + "weighted_round_robin",
	guardPrefix + "least_request_experimental",
	guardPrefix + "ring_hash_experimental",
}

// guardedChildConfig is the config a guarded child needs outside xDS:
// ring_hash picks by a request header (a random point without it).
var guardedChildConfig = map[string]string{
	"ring_hash_experimental": `{"requestHashHeader":"x-soak-ring-hash"}`,
}

// policyRegistered reports an error unless policy, or the child of a
// "leakproof_guard:<child>" policy, is registered.
func policyRegistered(policy string) error {
	name, guarded := strings.CutPrefix(policy, guardPrefix)
	if balancer.Get(name) == nil {
		if guarded {
			return fmt.Errorf("policy %q: child %q is not registered (import the package that registers it)", policy, name)
		}
		return fmt.Errorf("policy %q is not registered (import the package that registers it)", policy)
	}
	return nil
}
