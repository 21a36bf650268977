package trace

// Cause says why a READY connection was lost. It is the Cause of goaway and
// conn_lost events, the first word of their Reason, and the key of
// Stats.ConnectionsLost and of subconn's connections-lost metric.
type Cause string

// The loss causes.
const (
	CauseGoAway         Cause = "goaway"          // the server sent GOAWAY
	CauseEOF            Cause = "peer_closed"     // the server closed the socket (FIN)
	CauseReset          Cause = "reset"           // the connection was reset (RST)
	CauseLocal          Cause = "client_closed"   // the client closed the socket (keepalive timeout, transport error)
	CauseUnknown        Cause = "unknown"         // no socket tracking: install subconn.Dialer to tell causes apart
	CauseReadErr        Cause = "read_error"      // another read error
	CauseGoAwayInferred Cause = "goaway_inferred" // socket still open while the transport drains (TLS hides frames: see subconn.Credentials)
)
