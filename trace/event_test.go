package trace

import (
	"strconv"
	"strings"
	"testing"
)

func TestEventStringForEveryShape(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Seq: 1, Manager: 3, Kind: KindManagerOpen, Target: "dns:///svc"}, `seq=1 manager=3 manager_open target="dns:///svc"`},
		{Event{Seq: 2, Subchannel: 7, Key: "k", Kind: KindRef, RefsBefore: 1, RefsAfter: 2, Holder: "h"}, `seq=2 #7 k ref 1->2 holder=h`},
		{Event{Seq: 3, Subchannel: 7, Key: "k", Kind: KindDestroy}, `seq=3 #7 k destroy 0->0`},
		{Event{Seq: 4, Subchannel: 7, Key: "k", Kind: KindState, State: "READY", Reason: "from CONNECTING"}, `seq=4 #7 k state state=READY reason="from CONNECTING"`},
		{Event{Seq: 5, Subchannel: 7, Key: "k", Kind: KindSocketOpen, Socket: &SocketRef{ID: 9, Local: "l:1", Remote: "r:2"}}, `seq=5 #7 k socket_open socket=9 l:1->r:2`},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// Strings from outside (a key or socket address chosen by a resolver or a
// control plane, a holder, a reason) never put a control character or a
// line break into String: they are quoted or escaped.
func TestEventStringQuotesOutsideStrings(t *testing.T) {
	const evil = "127.0.0.1:1\x1b[2J\nseq=99 #1 forged"
	e := Event{Seq: 1, Subchannel: 7, Key: evil, Kind: KindSocketOpen, Holder: "h\x1b]0;x\x07",
		State: "READY\r", Reason: "r\n", Socket: &SocketRef{ID: 9, Local: "l:1", Remote: evil}}
	p := Problem{Kind: ProblemLeak, Subchannel: 7, Key: evil, Message: "holder " + evil + " forgot it"}
	for _, s := range []string{e.String(), p.String()} {
		if strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !strconv.IsPrint(r) }) {
			t.Errorf("a control character reached the line: %q", s)
		}
		if !strings.Contains(s, strconv.Quote(evil)) && !strings.Contains(s, `\x1b[2J\nseq=99`) {
			t.Errorf("the key is not quoted: %q", s)
		}
	}
	if got := e.String(); !strings.Contains(got, "#7 "+strconv.Quote(evil)+" socket_open") || !strings.Contains(got, "->"+strconv.Quote(evil)) {
		t.Errorf("String() = %q: want the key and the remote address Go-quoted", got)
	}
}
