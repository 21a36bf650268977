// Package subconn lets a grpc-go load balancer create every SubConn through a
// Manager, so that no subchannel outlives its last holder.
//
// Build one Manager per balancer (NewManager in Build, Close in Close) and get
// subchannels from it instead of from balancer.ClientConn:
//
//   - Acquire returns a *SubConn handle for a backend key (Addr, ServerName,
//     Attributes). A second Acquire of the same key shares the same real
//     subchannel and counts 1→2. Release counts down; at zero the manager
//     calls Shutdown on the real SubConn exactly once.
//   - A key's Addr is the backend's canonical address, so two spellings of
//     one backend share one subchannel: IP literals are normalised (an
//     IPv4-mapped IPv6 address is unmapped, IPv6 is zero-compressed and lower
//     case, the port is a number: "[::ffff:127.0.0.1]:080" is
//     "127.0.0.1:80"). Hostnames are kept as written and never resolved
//     ("localhost:80" and "127.0.0.1:80" are two keys); addresses without a
//     port, unix socket paths and named ports are not changed. The
//     subchannel dials the spelling of its first Acquire; traces and
//     SubConn.Key show the canonical one.
//   - A Set keeps one holder's handles in step with an address list (Sync),
//     acquiring what is new and releasing what is gone.
//   - Manager.ClientConn wraps a balancer.ClientConn for a child policy such
//     as grpc's pickfirst: its NewSubConn acquires, its SubConns' Shutdown
//     releases, and its pickers hand grpc the real SubConns. The leakproof
//     policies run grpc's pickfirst on such ClientConns; leakproof_guard
//     puts any policy on one.
//   - ClientConn.WatchOrphans catches a child that forgets a SubConn: one
//     whose address left the resolver state (ObserveResolverState) longer
//     than a timeout ago while the child still holds it is an orphan,
//     recorded and, by default, reclaimed.
//
// A picker must return the real SubConn (Unwrap): grpc re-picks forever on a
// SubConn it did not create. examples/custombalancer in the leakproof
// repository is a complete policy written this way, to copy.
//
// # State updates
//
// The manager registers one StateListener per real SubConn and fans its
// updates out to every holder. A holder that Acquires a subchannel which is
// already connecting, ready or in backoff is first told that state. A child
// on Manager.ClientConn gets grpc's StateListener contract instead: nothing
// before its first Connect on the SubConn (grpc's "will never be invoked
// until after Connect() is called"), then the state the shared subchannel
// is in, then every change. Updates run one at a time, in order, never with
// the manager's lock held. A state update from grpc has reached every holder
// when grpc's call returns, on grpc's serializer, as grpc would have
// delivered it to the holder itself; what a holder's own call causes (the
// state told at Acquire or at a first Connect, the final SHUTDOWN after
// Release, a health replay) runs on a short-lived goroutine of the
// manager's, unless grpc's next update delivers it first. That goroutine
// never runs during Manager.Serialize: a parent that calls its child only
// through Serialize (leakproof_guard does) gives the child grpc's guarantee
// that no listener runs during its own balancer calls. Otherwise a balancer
// that receives updates must guard its state with a mutex (as grpc's own
// pickfirst does). A listener is never called from inside the
// holder's own call to Acquire, Release, Connect, Sync or
// RegisterHealthListener, so a balancer may hold its mutex across those
// calls. After a holder releases, it gets exactly one final SHUTDOWN update.
// Updates for a SubConn that has been shut down are dropped. Health
// listeners (RegisterHealthListener) are fanned out the same way: one real
// listener per READY period, the latest health state replayed to holders
// that register later.
//
// When a READY subchannel goes IDLE the connection was lost. The manager
// records why — a GOAWAY, the peer closing or resetting the socket, the
// client closing it — and, if a holder asked for it (WithAutoReconnect),
// calls Connect on the same subchannel. It never creates a second
// subchannel for a key that has one: an Acquire that races with the Shutdown
// of the same key waits for Shutdown to return.
//
// # Sockets
//
// Dialer, installed with grpc.WithContextDialer, reads the owning subchannel
// from the address attributes grpc passes to dialers and reports each
// socket's open and close to it. With it, the manager knows which sockets
// each subchannel owns (including sockets still draining streams after a
// GOAWAY or a Shutdown), tells the causes of a lost connection apart, writes
// destroy only when every socket is closed, and force-closes sockets still
// open DefaultDrainTimeout after Shutdown (WithDrainTimeout). Without it
// everything else works; destroy is written at Shutdown.
//
// # The refcount trace
//
// Every step is a trace.Event, kept in the manager's ring (WithTraceRing,
// Manager.Trace) and published to trace.Subscribe. When the ring size is
// zero and nobody subscribes, no event is built at all. Package trace reads,
// writes and checks the trace.
package subconn
