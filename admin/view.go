package admin

import (
	"cmp"
	"slices"

	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
)

// collect reads every manager serving target (every manager if target is
// empty), ordered by id, as the service, the handler and trace.CheckLive
// read them.
func collect(target string) []trace.ManagerState {
	var out []trace.ManagerState
	for _, m := range subconn.Managers() {
		if target != "" && m.Target() != target {
			continue
		}
		out = append(out, m.Inspect())
	}
	return out
}

// allSubchannels returns the subchannels of ms, ordered by id.
func allSubchannels(ms []trace.ManagerState) []trace.Subchannel {
	var out []trace.Subchannel
	for _, m := range ms {
		out = append(out, m.Subchannels...)
	}
	slices.SortFunc(out, func(a, b trace.Subchannel) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// recentEvents returns the latest n events of ms's rings, in seq order.
func recentEvents(ms []trace.ManagerState, n int) []trace.Event {
	var out []trace.Event
	for _, m := range ms {
		out = append(out, m.Events...)
	}
	slices.SortFunc(out, func(a, b trace.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// subchannelView is a subchannel with the channelz ids of it, its channel
// and its sockets: what the page and the JSON show, and what
// ListSubchannels converts, so that all three join alike.
type subchannelView struct {
	trace.Subchannel
	ChannelzSubchannelID int64        `json:"channelz_subchannel_id,omitempty"`
	ChannelzChannelID    int64        `json:"channelz_channel_id,omitempty"`
	Sockets              []socketView `json:"sockets"`
}

// socketView is a socket with its channelz id.
type socketView struct {
	trace.Socket
	ChannelzSocketID int64 `json:"channelz_socket_id,omitempty"`
}

// joinChannelz joins si with channelz through join (nil: no ids). The
// subchannel's ids are those of its first socket channelz knows.
func joinChannelz(si trace.Subchannel, join func(local, remote string) czIDs) subchannelView {
	v := subchannelView{Subchannel: si, Sockets: make([]socketView, 0, len(si.Sockets))}
	for _, s := range si.Sockets {
		sv := socketView{Socket: s}
		if join != nil {
			ids := join(s.Local, s.Remote)
			sv.ChannelzSocketID = ids.socket
			if ids.subchannel != 0 && v.ChannelzSubchannelID == 0 {
				v.ChannelzSubchannelID, v.ChannelzChannelID = ids.subchannel, ids.channel
			}
		}
		v.Sockets = append(v.Sockets, sv)
	}
	return v
}
