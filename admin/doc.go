// Package admin shows a running process's leakproof subchannels: call
// Register on your gRPC server (and mount Handler on your debug HTTP mux) to
// see which subchannels are alive, who holds them, every refcount event as it
// happens, and where a reference was never dropped.
//
// Register adds leakproof.admin.v1.AdminService (proto/leakproof/admin/v1):
//
//   - ListSubchannels: every subchannel not yet destroyed, of every leakproof
//     manager in the process (one per channel using a leakproof policy):
//     target, key, state, references and their holders, the sockets it owns
//     (local and remote address, when opened, whether a GOAWAY came on it),
//     age, shutdown, connections lost.
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
// # Slow watchers
//
// A watcher costs the balancers nothing: events reach it through a
// trace.Subscription that publishers never wait for. A watcher that falls
// more than WatchBuffer events behind is dropped: the service counts it
// (ListSubchannelsResponse.dropped_watchers), logs it, and ends the stream
// with RESOURCE_EXHAUSTED naming the seq to resume from once the client
// reads again.
package admin
