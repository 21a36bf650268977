// Package soak proves that a gRPC client does not leak under the faults real
// deployments see: call Run (or Verify from a test) and fail the build when
// the Result does not Pass.
//
// A run starts real gRPC backends on 127.0.0.1 (package testbackend), a
// channel under test on a resolver (Config.Resolver: a manual resolver by
// default, a real DNS server on 127.0.0.1, or an embedded xDS control plane), dialing through
// subconn.Dialer, and RPC load: unary calls and streams, retried on
// UNAVAILABLE with bounded exponential backoff by go-grpc-middleware's
// retry interceptor. The channel is the user's own when Config gives its
// service config (ServiceConfig), dial options (DialOptions; those that
// would take over the soak's dialer, credentials, resolver or service
// config are refused), dialer (Dialer, under the soak's socket tracking),
// services on every backend (RegisterServices) and RPC as the unary load
// (Load), over TLS if asked (TLS); otherwise it runs Policy and Echo calls. An RPC that still fails after its retries is lost; the
// verdict bounds the fraction lost (Config.MaxFailureRate, 1% by default).
//
// While the load runs, a timeline injects each selected fault in its own
// phase (see Fault; every fault runs at least once, and long runs repeat the
// timeline): GOAWAY storms, TCP resets, backends stopped and restarted on
// the same port, duplicate addresses and overlapping endpoints, resolver
// flapping, errors and empty lists, a frozen backend that accepts and never
// answers, TLS handshake failures on channels of their own, channel churn,
// child processes started while channels dial (exec), and resolver
// starvation under a lowered RLIMIT_NOFILE in a child soak (starve).
// Config.Compare runs a second policy (grpc's round_robin, say) side
// by side on the same backends and resolver updates, for comparison only.
//
// Every Config.SampleInterval the run reads goroutines, descriptors and the
// process's TCP sockets from /proc and books each descriptor to its owner
// (the channels under test, each backend, the rest). Checks run on every
// sample (removed backends released within DrainTimeout+RemovalSlack, one
// socket per backend under leakproof's policies, subchannels explained by
// the resolver state for any policy, closed channels released, backends
// and the client explained, no growth) and at the end (baseline, a clean
// refcount trace, every fault shown). A condition must hold for three
// samples in a row to fail. Result.Verdict names each failed check with its
// evidence; Result.WriteText, Result.WriteHTML and Result's JSON report it.
// The fault catalogue and every check are described in docs/soak.md.
//
// The verdict is judged from typed results only: leaktest.Find's Leaks for
// the baseline, trace.Checker's Report for the trace, the fault
// table's proof for each phase; no message text is ever matched.
//
// Importing soak replaces no policy. What it imports registers under its
// own names: leakproof's policy packages (leakproof_pick_first,
// leakproof_round_robin, leakproof_guard) and, for ResolverXDS, grpc's xds
// package (the xds resolver and the policies it brings: ring_hash,
// least_request, weighted_round_robin and xDS's own). Its init does
// nothing unless the soak started the process as its child
// (LEAKPROOF_SOAK_CHILD set): then the child runs from init, or, when its
// policy is registered later (by the user's test package), from RunChild,
// which Run calls first; see RunChild. The child starts from the same
// binary, so that it exists wherever a soak runs.
//
// The soak reads the whole process: run one at a time, with no other test
// starting goroutines or sockets meanwhile. It needs Linux.
package soak
