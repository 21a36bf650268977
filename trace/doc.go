// Package trace is the refcount trace of leakproof's subchannel managers
// (package subconn) and the module's one leak checker.
//
// Every step of a subchannel's life is an Event: create, ref, unref,
// connect, state, goaway, conn_lost, shutdown, socket_open, socket_close,
// drain_timeout, destroy, leak (a reference the manager's Close had to drop)
// and orphan (a reference held after its address left the resolver state):
//
//	create ─ ref 0→1 ─ connect ─ CONNECTING ─ READY ─┬─ goaway / conn_lost → IDLE ─ connect …
//	                                                  └─ (holders release) unref 1→0
//	shutdown (exactly once) ─ socket_close for every socket it owned ─ destroy
//
// destroy is written only when the count is zero, Shutdown was called and
// every owned socket is closed. Each manager keeps its latest events in a
// Ring; Subscribe and NewWriter stream the events of every manager in the
// process. The JSON-lines format is Event's JSON encoding, one object per
// line; Read reads it.
//
// The leak checker comes in three forms over the same rules: Check replays a
// whole trace and names every leaked subchannel and unbalanced reference,
// with its events as evidence; Checker is the same check fed event by event,
// for a trace too long to keep (the soak uses it); CheckLive checks running
// managers (subconn's Manager.Inspect) and their rings (the admin service
// uses it). Packages above only convert and display the Problems.
package trace
