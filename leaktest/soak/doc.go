// Package soak proves that a gRPC client does not leak under the faults real
// deployments see: call Run (or Verify from a test) and fail the build when
// the Result does not Pass.
package soak
