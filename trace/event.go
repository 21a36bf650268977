package trace

import (
	"fmt"
	"time"

	"github.com/leakproof/leakproof/internal/termsafe"
)

// Kind names what happened to a subchannel in an Event.
type Kind string

// The kinds of events in a refcount trace, in the order of a subchannel's
// life. See the package documentation for the lifecycle.
const (
	KindCreate       Kind = "create"        // NewSubConn returned a subchannel for a new key
	KindRef          Kind = "ref"           // a holder took a reference
	KindUnref        Kind = "unref"         // a holder dropped a reference
	KindConnect      Kind = "connect"       // Connect was called on the real SubConn
	KindState        Kind = "state"         // the real SubConn changed connectivity state
	KindGoAway       Kind = "goaway"        // READY→IDLE because the server sent GOAWAY
	KindConnLost     Kind = "conn_lost"     // READY→IDLE because the connection was lost
	KindShutdown     Kind = "shutdown"      // Shutdown was called (exactly once, at refs 0)
	KindSocketOpen   Kind = "socket_open"   // the dialer opened a socket for this subchannel
	KindSocketClose  Kind = "socket_close"  // a socket of this subchannel was closed
	KindDrainTimeout Kind = "drain_timeout" // sockets still open after the drain timeout were force-closed
	KindDestroy      Kind = "destroy"       // refs 0, Shutdown called and every owned socket closed
	KindLeak         Kind = "leak"          // a holder had not released when the manager closed
	KindOrphan       Kind = "orphan"        // a holder kept a subchannel whose address left the resolver state past the orphan timeout
	KindManagerOpen  Kind = "manager_open"  // a manager was built (Subchannel is 0)
	KindManagerClose Kind = "manager_close" // a manager was closed (Subchannel is 0)
)

// An Event is one line of a refcount trace.
//
// Its JSON form, one object per line, is the trace format read by
// Read, Check and the leakproof CLI:
//
//	{"seq":12,"time":"2026-11-22T10:00:00.000000001Z","manager":1,"target":"dns:///svc:443",
//	 "subchannel":7,"key":"127.0.0.1:50051","event":"unref","refs_before":2,"refs_after":1,
//	 "state":"READY","holder":"endpoint[1]","reason":"address removed"}
//
// seq is process-wide and strictly increasing in emission order; within one
// manager events are delivered in seq order. subchannel and manager ids are
// process-wide and never reused. socket is present on socket events; cause
// on goaway and conn_lost events, where it is also the reason's first word.
type Event struct {
	Seq        uint64     `json:"seq"`
	Time       time.Time  `json:"time"`
	Manager    uint64     `json:"manager"`
	Target     string     `json:"target,omitempty"`
	Subchannel uint64     `json:"subchannel"`
	Key        string     `json:"key,omitempty"`
	Kind       Kind       `json:"event"`
	RefsBefore int        `json:"refs_before"`
	RefsAfter  int        `json:"refs_after"`
	State      string     `json:"state,omitempty"`
	Holder     string     `json:"holder,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Cause      Cause      `json:"cause,omitempty"`
	Socket     *SocketRef `json:"socket,omitempty"`
}

// SocketRef names one socket in an Event.
type SocketRef struct {
	ID     uint64 `json:"id"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
}

// String renders e as one readable line, for logs and `leakproof trace watch`:
//
//	seq=12 #7 127.0.0.1:50051 unref 2->1 holder=endpoint{127.0.0.1:50051} state=READY reason="address removed"
//
// Keys, holders, states and socket addresses come from resolvers, control
// planes and policies: each is printed as it is when it is printable text
// without spaces or quotes, and Go-quoted otherwise, so that no escape
// sequence or line break from outside reaches a terminal or a log line.
func (e Event) String() string {
	s := fmt.Sprintf("seq=%d #%d %s %s", e.Seq, e.Subchannel, termsafe.Quote(e.Key), termsafe.Quote(string(e.Kind)))
	if e.Subchannel == 0 {
		s = fmt.Sprintf("seq=%d manager=%d %s target=%q", e.Seq, e.Manager, termsafe.Quote(string(e.Kind)), e.Target)
	}
	switch e.Kind {
	case KindRef, KindUnref, KindLeak, KindShutdown, KindDestroy:
		s += fmt.Sprintf(" %d->%d", e.RefsBefore, e.RefsAfter)
	}
	if e.Holder != "" {
		s += " holder=" + termsafe.Quote(e.Holder)
	}
	if e.State != "" {
		s += " state=" + termsafe.Quote(e.State)
	}
	if e.Socket != nil {
		s += fmt.Sprintf(" socket=%d %s->%s", e.Socket.ID, termsafe.Quote(e.Socket.Local), termsafe.Quote(e.Socket.Remote))
	}
	if e.Reason != "" {
		s += fmt.Sprintf(" reason=%q", e.Reason)
	}
	return s
}
