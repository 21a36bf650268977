package subconn

// Cause says why a READY connection was lost. It is the Cause of goaway and
// conn_lost events, the first word of their Reason, and the key of
// Stats.ConnectionsLost and of the connections-lost metric.
type Cause string

// The loss causes.
const (
	CauseGoAway         Cause = "goaway"          // the server sent GOAWAY
	CauseEOF            Cause = "peer_closed"     // the server closed the socket (FIN)
	CauseReset          Cause = "reset"           // the connection was reset (RST)
	CauseLocal          Cause = "client_closed"   // the client closed the socket (keepalive timeout, transport error)
	CauseUnknown        Cause = "unknown"         // no socket tracking: install Dialer to tell causes apart
	CauseReadErr        Cause = "read_error"      // another read error
	CauseGoAwayInferred Cause = "goaway_inferred" // socket still open while the transport drains (TLS hides frames)
)

// loss is one classified READY→IDLE transition.
type loss struct {
	kind   Kind // KindGoAway or KindConnLost
	cause  Cause
	detail string // what happened, for people
}

// reason renders l as the Reason of its event: "cause: detail".
func (l loss) reason() string { return string(l.cause) + ": " + l.detail }

// lossCauseLocked classifies a READY→IDLE transition from the subchannel's
// current socket. Caller must hold m.mu.
func (r *record) lossCauseLocked() loss {
	c := r.coldOrZeroLocked().lastSocket
	if c == nil {
		return loss{KindConnLost, CauseUnknown, "install subconn.Dialer to tell GOAWAY from a closed socket"}
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
