// Package admin shows a running process's leakproof subchannels: call
// Register on your gRPC server (and mount Handler on your debug HTTP mux) to
// see which subchannels are alive, who holds them, every refcount event as it
// happens, and where a reference was never dropped.
//
// Register adds leakproof.admin.v1.AdminService (proto/leakproof/admin/v1);
// RegisterAll adds it beside grpc's admin services (channelz, and CSDS
// under xDS) on one server:
//
//   - ListSubchannels: every subchannel not yet destroyed, of every leakproof
//     manager in the process (one per channel using a leakproof policy):
//     target, key, state, references and their holders, the sockets it owns
//     (local and remote address, when opened, whether a GOAWAY came on it),
//     age, shutdown, connections lost, and the channelz ids of the
//     subchannel, its channel and its sockets; a page at a time
//     (page_size, default 1000, at most 10000; page_token).
//   - WatchEvents: the refcount trace from a seq on, first what the managers'
//     rings still hold, then live, with no gap or duplicate in between;
//     filtered by target, backend key or subchannel.
//   - CheckLeaks: a live leak check (see below).
//
// Handler serves the same view as an HTML page and as JSON, and the rings as
// a JSON-lines trace. The `leakproof trace` command (cmd/leakproof) reads the
// service: `trace list`, `trace watch`, `trace check --addr`.
//
// The view comes from subconn.Managers, the process-wide registry managers
// join when built and leave once closed with every subchannel destroyed.
// Nothing needs a debug build: the rings (subconn.WithTraceRing, the
// policies' traceRingSize) are on by default.
//
// # The leak check
//
// CheckLeaks (and the handler's check) runs trace.CheckLive, the module's
// one live leak check, and only converts its result. It reports
// subchannels shut down whose sockets are still open longer than a grace
// period (DefaultGracePeriod,
// the default drain timeout), subchannels released to zero references but
// never shut down, subchannels of closed managers never shut down, and what
// trace.Check finds replaying the rings: unbalanced references,
// holders released by Close, orphans (kind "orphan": a policy under
// leakproof_guard held a subchannel after its address left the resolver
// state), lifecycle steps out of order. A ring holds only
// the latest events, so verdicts that need the whole history ("never
// destroyed") come from the live state, and a subchannel whose start the
// ring dropped is checked from its first remaining event: a partial history
// gives no false positive.
//
// # Channelz
//
// A subchannel's channelz ids are found through its sockets: grpc's channelz
// service lists every socket with its local and remote address, unique
// among open TCP sockets, and the socket's parent is the subchannel. A
// subchannel with no socket open (IDLE, CONNECTING, drained) and a socket
// over a Unix socket show 0: channelz has nothing that tells them apart. A
// new socket of a subchannel that is not READY shows its id from 100ms after
// it is first listed: grpc registers a socket with channelz before its
// transport is built, and reading it earlier could race with the building.
//
// # Bounds
//
// A watcher costs the balancers nothing: events reach it through a
// subscription that publishers never wait for, whose buffer grows on demand
// up to WatchBuffer events. A watcher that falls further behind, or whose
// client reads nothing for SendTimeout, is dropped: the service counts it
// (ListSubchannelsResponse.dropped_watchers), logs it, and ends the stream
// with RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED naming the seq to resume
// from. At most MaxWatchers streams are open at once.
//
// # Security
//
// The service is read-only: nothing it offers changes a channel. It shows
// channel targets, backend addresses, holder names, socket addresses and
// the refcount trace, which map the process's backends and traffic. Serve
// it as grpc advises for channelz: on a separate admin server listening on
// an internal or loopback address, not on the port that serves traffic,
// with TLS (mTLS or a token checked by an interceptor) if it is reachable
// from other hosts. Handler serves the same data over HTTP: mount it on a
// debug mux, not on a public one.
package admin
