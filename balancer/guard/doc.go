// Package guard registers leakproof_guard: any load-balancing policy —
// grpc's weighted_round_robin, ring_hash_experimental,
// least_request_experimental, a mesh's, your own — with every subchannel it
// and its children create owned by one subconn.Manager, and the subchannels
// it forgets reclaimed. Import it and name the policy to guard:
//
//	{"loadBalancingConfig": [{"leakproof_guard": {
//	    "childPolicy": [{"weighted_round_robin": {}}, {"round_robin": {}}],
//	    "orphanTimeout": "30s",
//	    "orphans": "reclaim",
//	    "drainTimeout": "30s",
//	    "traceRingSize": 512,
//	    "reresolveInterval": "30s"
//	}}]}
//
// Every SubConn the child creates, and its children create (endpointsharding
// children, pick_first leaves), is acquired from the manager: one subchannel
// per backend key shared by every holder (endpoints {A} and {A,B} open one
// connection to A), reference counted, shut down exactly once, its sockets
// owned and drained within drainTimeout when the channel dials through
// subconn.Dialer, every step in the refcount trace, the admin service and
// `leakproof trace`. Pickers hand grpc the real SubConn; a pick costs one
// call and one type assertion more than the child's own and allocates
// nothing more (under grpc's pick_first, nothing more: its READY picker is
// replaced by one that returns the stored real SubConn).
//
// The child keeps grpc's guarantees: its balancer methods are called one at
// a time, and a StateListener is called only after Connect on its SubConn
// and never during one of those calls, even when the SubConn shares a
// subchannel that another holder connected long ago (the state is told at
// the child's Connect, after the call that made it returns). A policy
// written for grpc without a lock of its own runs unchanged.
//
// Config (unknown fields are an error):
//
//	childPolicy    list    required: [{"name": config}, ...]; the first registered policy is used,
//	                       its config parsed by its own parser (grpc's child-policy convention)
//	orphanTimeout  string  Go duration, (0, 24h]; default 30s (subconn.DefaultOrphanTimeout)
//	orphans        string  "reclaim" (default) or "report"
//	drainTimeout   string  Go duration, (0, 24h]; default 30s (subconn.DefaultDrainTimeout)
//	traceRingSize  int     events kept for the admin service, [0, 1048576]; default 512
//	reresolveInterval string  Go duration, [1s, 24h]; default off: while the guard is READY,
//	                       ask the resolver to resolve again this often
//
// reresolveInterval is for grpc's dns resolver, which resolves again only
// when a policy asks (a child that never asks keeps a backend removed from
// DNS while healthy for the life of the channel): with it the backend is
// released within reresolveInterval plus the resolver's minimum interval
// (30 s for grpc's dns resolver) plus drainTimeout, at three DNS queries a
// resolution. The timer is no RPC and never keeps grpc from putting an
// unused channel into IDLE mode.
//
// # Orphans
//
// A subchannel the child created for an address of the resolver state the
// guard handed it, and still holds after that address has been absent from
// the latest resolver state for longer than orphanTimeout, is an orphan: the
// child forgot to shut it down, and its socket would stay open for the life
// of the channel. The manager records an orphan event (holder, address, how
// long), counts it in the leakproof.subchannel.leaks metric with leak kind "orphan",
// and `leakproof trace check` and the admin service's leak check name it.
// With "reclaim" the manager then releases the child's reference itself:
// the subchannel is shut down (its sockets drained within drainTimeout), the
// child's later Shutdown of it is a logged no-op, and the child gets no
// state update for it again. With "report" it is left to the child.
//
// Limits: only addresses that were in the resolver state when the child
// created the subchannel are judged. A child that gets addresses from
// elsewhere (a grpclb-style balancer, an xDS policy fed by its own
// control-plane stream) is never judged for those. A child that keeps a
// subchannel on purpose after its address left the latest resolver state
// for longer than orphanTimeout has it reclaimed: raise orphanTimeout, or
// use "report". Addresses are compared by their Addr string.
//
// Under an xDS control plane the guard is the leaf policy of each priority,
// below grpc's priority policy. A demoted priority's child is stopped and
// cached, guard and subchannels included, for up to 15 minutes; a cached
// child gets no resolver update, so its guard still holds the state that
// listed its backends and judges nothing orphan, even after EDS lists them
// nowhere. Their sockets stay open until the cache expires or the channel
// closes (measured in internal/testing/xdse2e, TestGuardPriorityCache).
//
// At Close the child is closed first; whatever it still holds is then
// released by the manager's Close and reported as a leak.
//
// Policy authors can register their policy already guarded with Wrap.
package guard
