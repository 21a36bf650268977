// Package soak proves that a gRPC client does not leak under the faults real
// deployments see: call Run (or Verify from a test) and fail the build when
// the Result does not Pass.
//
// A run starts real gRPC backends on 127.0.0.1 (package testbackend), a
// channel with the policy under test on a resolver/manual resolver, dialing
// through subconn.Dialer, and RPC load: unary Echo calls and streams, retried
// on UNAVAILABLE with bounded exponential backoff by go-grpc-middleware's
// retry interceptor. An RPC that still fails after its retries is lost; the
// verdict bounds the fraction lost (Config.MaxFailureRate, 1% by default).
//
// While the load runs, a timeline injects each selected fault in its own
// phase (see Fault; every fault runs at least once, and long runs repeat the
// timeline): GOAWAY storms, TCP resets, backends stopped and restarted on
// the same port, duplicate addresses and overlapping endpoints, resolver
// flapping, errors and empty lists, a frozen backend that accepts and never
// answers, TLS handshake failures on channels of their own, and channel
// churn. Config.Compare runs a second policy (grpc's round_robin, say) side
// by side on the same backends and resolver updates, for comparison only.
//
// # What is checked, and when
//
// Every Config.SampleInterval the run reads goroutines, open descriptors and
// the real TCP sockets of the process (/proc, through package leaktest),
// attributes each socket to the channel that dialed it, and counts the live
// subchannels of the run's subconn managers. On each sample:
//
//   - after a resolver update removes a backend, the channel's sockets to it
//     must reach 0 within DrainTimeout+RemovalSlack while the channel stays
//     open. grpc's ClientConn.Close shuts down every SubConn a policy forgot,
//     so a policy that never calls Shutdown is only caught here;
//   - the leakproof policies hold at most one socket per backend outside
//     GOAWAY and removal drain windows;
//   - a closed channel's sockets (churned, TLS) must go within the same
//     bound.
//
// At the end everything is closed and the run checks that goroutines,
// descriptors and sockets to every backend are back at the baseline taken
// when Run started, that the refcount trace of the run's channels checks
// clean (subconn.CheckTrace), and that every fault ran and showed its
// effect. Result.Verdict names each failed check with its evidence: which
// backend's sockets stayed open after its removal, since when, and the
// sockets themselves. Result.WriteText, Result.WriteHTML (plots of every
// sample with the faults marked) and Result's JSON encoding report it.
//
// The verdict is judged from typed results only: leaktest.Find's Leaks for
// the baseline, subconn.TraceChecker's Report for the trace, the fault
// table's proof for each phase; no message text is ever matched.
//
// The soak sits at the top of the module's import graph, beside the admin
// service and below only the CLI: nothing under leaktest or subconn imports
// it (scripts/layering.sh checks this).
//
// The soak reads the whole process: run one at a time, with no other test
// starting goroutines or sockets meanwhile. It needs Linux.
package soak
