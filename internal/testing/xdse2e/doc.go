// Package xdse2e holds leakproof's end-to-end tests under a real xDS control
// plane: a go-control-plane management server on 127.0.0.1 (internal/
// xdsplane) selects leakproof_round_robin, leakproof_pick_first, grpc's
// own xDS round robin or a deliberately leaky policy per cluster, and pushes
// EDS churn, locality duplicates, priority failover, a CDS switch, a NACK
// and a restart while real backends serve RPCs. The package has no code of
// its own; its tests are the point.
//
// XDSE2E_HEAVY=1 runs the long variants (more rounds of churn).
package xdse2e
