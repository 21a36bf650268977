package subconn

import "github.com/leakproof/leakproof/trace"

// loss is one classified READY→IDLE transition.
type loss struct {
	kind   trace.Kind // trace.KindGoAway or trace.KindConnLost
	cause  trace.Cause
	detail string // what happened, for people
}

// reason renders l as the Reason of its event: "cause: detail".
func (l loss) reason() string { return string(l.cause) + ": " + l.detail }

// lossCauseLocked classifies a READY→IDLE transition from the subchannel's
// current socket. Caller must hold m.mu.
func (r *record) lossCauseLocked() loss {
	c := r.coldOrZeroLocked().lastSocket
	if c == nil {
		return loss{trace.KindConnLost, trace.CauseUnknown, "install subconn.Dialer to tell GOAWAY from a closed socket"}
	}
	return c.lossCause()
}

// failureCauseLocked describes a CONNECTING→TRANSIENT_FAILURE transition.
// Caller must hold m.mu.
func (r *record) failureCauseLocked(err error) string {
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	cold := r.coldOrZeroLocked()
	if !cold.dialSeen {
		return msg
	}
	if c := cold.lastSocket; c != nil && !c.opened.Before(r.m.at(cold.connectingSince)) {
		return "handshake failed: " + msg
	}
	if cold.lastDialErr != nil {
		return "connect failed: " + msg
	}
	return msg
}
