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
// service config (ServiceConfig), dial options (DialOptions), services on
// every backend (RegisterServices) and RPC as the unary load (Load), over
// TLS if asked (TLS); otherwise it runs Policy and Echo calls. An RPC that still fails after its retries is lost; the
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
// # The fault catalogue: backends and children
//
// Each fault's backend state is bounded by its phase, so that a long run
// models the fault and not a pile of its leftovers:
//
//   - freeze: the frozen backend (testbackend.Frozen) models a server at its
//     connection limit. It is frozen for its phase only: it accepts, reads
//     and discards, and never writes, so a client that gives up (closes or
//     resets) is noticed and the backend closes its end; when the phase ends
//     it thaws, resetting what it still held, as a server restarted out of
//     its stall. It therefore holds at most the connections its clients are
//     still trying: never one whose client has gone, never one past its
//     phase. (The frozen backend used to hold every connection, unread, until
//     shutdown: ~5 descriptors a minute that only Close released. A test
//     brings that model back, testbackend.StallForever, and the run fails.)
//   - rst: the resetting backend resets each connection after 200ms, and the
//     timer goes with the connection; ResetConns empties the regular ones.
//   - restart, goaway: a stop closes the listener and every connection and
//     waits for the server's goroutines before the restart listens again.
//   - tls: failed handshakes close their connections on both sides.
//   - exec: each child is an idle re-execution of the soak's binary that
//     exits after 150ms and is waited for; starve: the child soak exits when
//     its phase ends (and is killed if it does not), its backends and channels
//     closed inside it.
//
// # What is checked, and when
//
// Every descriptor of the process has an owner in the soak's books: the
// sockets of the channels under test (their dialer books each by inode from
// the moment it exists until its Close), each backend's sockets (listener
// and connections, held ones included: testbackend.Inodes), and everything
// else (files, pipes, the runtime's poller, the trace writer, children's
// pidfds). The samples, the JSON and the HTML report carry each owner's
// series, with the heap in use and live, and the live manager records.
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
//   - subchannels explained, for any policy: a backend listed in k
//     endpoints now or within the same bound has at most k subchannels
//     (counted by grpc's channelz, so an IDLE one without a socket counts)
//     and k sockets of the channel (GOAWAY drain windows excused);
//   - a closed channel's sockets (churned, TLS) must go within the same
//     bound;
//   - backend connections explained: a backend holds no more connections
//     than its phase allows (the frozen one while frozen: its clients'
//     sockets to it plus one in flight; otherwise none), and keeps no more
//     open than its clients hold for longer than the same bound (it notices
//     a client's close when it reads the EOF);
//   - client explained: descriptors nobody owns stay within a constant of
//     the first sample, and goroutines within a budget of live sockets,
//     channels and load goroutines plus a constant;
//   - no growth: one mechanism, a least-squares slope, judges each owner's
//     fewest descriptors in each repeat of a phase (a climb across three or
//     more repeats fails naming the owner and the phase, even if
//     everything is released at shutdown) and, on runs with five minutes of
//     samples after warm-up, every sampled series: goroutines, descriptors
//     and each owner's share, heap in use and live, live manager records.
//     The limits (0.5 descriptor or record and 1 goroutine a minute, 1 MiB
//     of heap a minute, each with a rise above a count's noise) sit well
//     above a clean 10-minute run with every fault and well below the
//     frozen backend's old leak.
//
// Conditions checked on samples must hold for three samples in a row to
// fail, so that a socket caught between two readings is not a leak.
//
// At the end everything is closed and the run checks that goroutines,
// descriptors and sockets to every backend are back at the baseline taken
// when Run started, that the refcount trace of the run's channels checks
// clean (trace.Check), and that every fault ran and showed its
// effect; the exec and starve faults carry their own checks (no child holds
// a socket of ours; no connection to a backend stays ESTABLISHED in the
// network namespace once its channel closed; no busy loop, no descriptor
// growth, clear errors and recovery under resolver starvation). Result
// carries the slopes, peak and final totals and the subchannels created
// and destroyed. Result.Verdict names each failed check with its evidence: which
// backend's sockets stayed open after its removal, since when, and the
// sockets themselves. Result.WriteText, Result.WriteHTML (plots of every
// sample with the faults marked) and Result's JSON encoding report it.
//
// The verdict is judged from typed results only: leaktest.Find's Leaks for
// the baseline, trace.Checker's Report for the trace, the fault
// table's proof for each phase; no message text is ever matched.
//
// The soak sits at the top of the module's import graph, beside the admin
// service and below only the CLI: nothing under leaktest or subconn imports
// it (scripts/layering.sh checks this).
//
// Importing soak registers nothing. A process the soak starts as its child
// (LEAKPROOF_SOAK_CHILD set) runs the child from this package's init, or,
// when its policy is registered later (by the user's test package), from
// RunChild, which Run calls first; see RunChild.
//
// The soak reads the whole process: run one at a time, with no other test
// starting goroutines or sockets meanwhile. It needs Linux.
package soak
