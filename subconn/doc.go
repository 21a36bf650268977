// Package subconn lets a grpc-go load balancer create every SubConn through a
// Manager, so that no subchannel outlives its last holder.
//
// Build one Manager per balancer (NewManager in Build, Close in Close) and
// take subchannels from it, in one of two ways:
//
//   - Manager.ClientConn wraps the balancer.ClientConn for a child policy:
//     its NewSubConn acquires, its SubConns' Shutdown releases, its pickers
//     hand grpc the real SubConns. This is how a policy reuses grpc's own
//     policies unchanged (leakproof_pick_first and leakproof_round_robin run
//     grpc's pickfirst on it; leakproof_guard runs any policy on it).
//   - Manager.Acquire and Set are for a policy that makes its own SubConns
//     and picker (examples/custombalancer): Set.Sync keeps one holder's
//     handles in step with the resolver's addresses in one call, Release
//     names a reason in the trace, and a handle is told the shared
//     subchannel's state at once rather than after its first Connect.
//
// Both count references on one subchannel per backend key (canonical
// address, ServerName, Attributes) and call Shutdown on the real SubConn
// exactly once, when the count reaches zero. A picker must return the real
// SubConn (SubConn.Unwrap): grpc re-picks forever on one it did not create.
//
// # State updates
//
// The manager registers one StateListener per real SubConn and fans its
// updates out to every holder, one at a time, in order, never with the
// manager's lock held. A holder that acquires a subchannel already
// connecting, ready or in backoff is first told that state; a child on
// Manager.ClientConn hears nothing before its first Connect (grpc's
// contract). An update from grpc reaches every holder before grpc's call
// returns; what a holder's own call causes (the state told at Acquire, the
// final SHUTDOWN after Release, a health replay) runs on a short-lived
// goroutine of the manager's, never during Manager.Serialize. A listener is
// never called from inside the holder's own Acquire, Release, Connect, Sync or
// RegisterHealthListener, so a balancer may hold its mutex across those
// calls; otherwise it guards its state with a mutex, as grpc's pickfirst does.
// After a release a holder gets exactly one final SHUTDOWN update.
//
// # Sockets and the trace
//
// Dialer, installed with grpc.WithContextDialer, tells each subchannel which
// sockets it owns: the manager then tells the causes of a lost connection
// apart, writes destroy only when every socket is closed, and force-closes
// sockets still open DefaultDrainTimeout after Shutdown. Every step is a
// trace.Event, kept in the manager's ring (WithTraceRing, Manager.Trace) and
// published to trace.Subscribe; package trace reads, writes and checks it.
package subconn
