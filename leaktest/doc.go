// Package leaktest fails a test that leaves goroutines, file descriptors or
// sockets to a backend open; start each test with
//
//	defer leaktest.Check(t, leaktest.Backends(backendAddr))()
//
// Check takes a baseline when it is called and returns a function that,
// when the test ends, polls until everything is back at that baseline or a
// deadline passes:
//
//   - goroutines, found with go.uber.org/goleak: every goroutine that was not
//     running at the baseline must have exited;
//   - file descriptors, read from /proc/self/fd: every descriptor open at the
//     end must have been open at the baseline, pointing at the same thing
//     (descriptor numbers are reused, so the number alone proves nothing);
//   - sockets to the backends named with [Backends], joined from
//     /proc/self/net/tcp and /proc/self/net/tcp6 on the inodes this process
//     holds, and connections to them that another process holds (a
//     child that inherited a socket): their number must be back at the
//     baseline count.
//
// Polling matters for gRPC: a ClientConn or SubConn closes its transport
// gracefully, so a check made the instant Close returns can see a socket or a
// reader goroutine that is about to go away.
//
// When something is left, the report shows the evidence: each leaked
// descriptor and what it points to (a file's path; a socket's local and
// remote address and TCP state, and the leakproof subchannel that owns it,
// with its id and backend key), and each leaked goroutine's stack.
//
// Use [VerifyTestMain] in TestMain to check a whole package, [Take] and
// [VerifyNone] to hold a baseline yourself, and [SocketsTo] to count
// connections to a backend while a test runs.
//
// As in goleak, the checks have one core: [Find] polls and returns the typed
// [Leaks] (goroutines; descriptors; sockets per backend; each with its
// evidence), and Check, VerifyNone and VerifyTestMain only format it. Code
// that judges a leak, such as the soak's verdict, reads Leaks' fields and
// never the messages.
//
// The checks see the whole process, so they cannot tell one test's
// goroutines and descriptors from another's: do not use Check in tests that
// call t.Parallel; use VerifyTestMain for those.
//
// Descriptors and sockets are read from /proc and are checked on Linux only.
// Elsewhere Check and VerifyNone check goroutines alone (and report an error
// if Backends were asked for), and Take and SocketsTo return an
// error wrapping errors.ErrUnsupported.
package leaktest
