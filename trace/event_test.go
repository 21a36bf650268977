package trace

import (
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
