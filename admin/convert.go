package admin

import (
	"cmp"
	"slices"
	"time"

	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// EventToProto returns e as the admin service sends it.
func EventToProto(e trace.Event) *adminv1.Event {
	pe := &adminv1.Event{
		Seq:          e.Seq,
		Time:         timestamp(e.Time),
		ManagerId:    e.Manager,
		Target:       e.Target,
		SubchannelId: e.Subchannel,
		Key:          e.Key,
		Kind:         string(e.Kind),
		RefsBefore:   int64(e.RefsBefore),
		RefsAfter:    int64(e.RefsAfter),
		State:        e.State,
		Holder:       e.Holder,
		Reason:       e.Reason,
		Cause:        string(e.Cause),
	}
	if s := e.Socket; s != nil {
		pe.Socket = &adminv1.SocketRef{Id: s.ID, LocalAddress: s.Local, RemoteAddress: s.Remote}
	}
	return pe
}

// EventFromProto returns the trace event pe describes, as trace.Read would
// read it from a JSON-lines trace (so that trace.Check and Event.String work
// on events received from the service). A nil pe is the zero Event.
func EventFromProto(pe *adminv1.Event) trace.Event {
	if pe == nil {
		return trace.Event{}
	}
	e := trace.Event{
		Seq:        pe.GetSeq(),
		Manager:    pe.GetManagerId(),
		Target:     pe.GetTarget(),
		Subchannel: pe.GetSubchannelId(),
		Key:        pe.GetKey(),
		Kind:       trace.Kind(pe.GetKind()),
		RefsBefore: int(pe.GetRefsBefore()),
		RefsAfter:  int(pe.GetRefsAfter()),
		State:      pe.GetState(),
		Holder:     pe.GetHolder(),
		Reason:     pe.GetReason(),
		Cause:      trace.Cause(pe.GetCause()),
	}
	if pe.GetTime() != nil {
		e.Time = pe.GetTime().AsTime()
	}
	if s := pe.GetSocket(); s != nil {
		e.Socket = &trace.SocketRef{ID: s.GetId(), Local: s.GetLocalAddress(), Remote: s.GetRemoteAddress()}
	}
	return e
}

func eventsToProto(evs []trace.Event) []*adminv1.Event {
	out := make([]*adminv1.Event, len(evs))
	for i, e := range evs {
		out[i] = EventToProto(e)
	}
	return out
}

// timestamp returns t as a Timestamp, or nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func managerToProto(m trace.ManagerState) *adminv1.Manager {
	return &adminv1.Manager{Id: m.ID, Target: m.Target, Closed: m.Closed, Stats: statsToProto(m.Stats)}
}

// statsToProto is the one conversion of a manager's Stats to the proto;
// TestStatsToProtoCarriesEveryField holds the two together.
func statsToProto(st trace.Stats) *adminv1.ManagerStats {
	ps := &adminv1.ManagerStats{
		Created:         st.Created,
		Shutdowns:       st.Shutdowns,
		Destroyed:       st.Destroyed,
		Refs:            st.Refs,
		Unrefs:          st.Unrefs,
		Leaks:           st.Leaks,
		SocketsOpened:   st.SocketsOpened,
		SocketsClosed:   st.SocketsClosed,
		DrainTimeouts:   st.DrainTimeouts,
		Orphans:         st.Orphans,
		ConnectionsLost: map[string]uint64{},
	}
	for k, v := range st.ConnectionsLost {
		ps.ConnectionsLost[string(k)] = v
	}
	return ps
}

// StatsFromProto returns the manager counters ps carries (nil: zero), for a
// client of the service that renders them as the handler does.
func StatsFromProto(ps *adminv1.ManagerStats) trace.Stats {
	st := trace.Stats{
		Created:       ps.GetCreated(),
		Shutdowns:     ps.GetShutdowns(),
		Destroyed:     ps.GetDestroyed(),
		Refs:          ps.GetRefs(),
		Unrefs:        ps.GetUnrefs(),
		Leaks:         ps.GetLeaks(),
		SocketsOpened: ps.GetSocketsOpened(),
		SocketsClosed: ps.GetSocketsClosed(),
		DrainTimeouts: ps.GetDrainTimeouts(),
		Orphans:       ps.GetOrphans(),
	}
	for k, v := range ps.GetConnectionsLost() {
		if st.ConnectionsLost == nil {
			st.ConnectionsLost = map[trace.Cause]uint64{}
		}
		st.ConnectionsLost[trace.Cause(k)] = v
	}
	return st
}

// subchannelToProto converts si, with the channelz ids join finds for its
// sockets (join may be nil: no channelz ids).
func subchannelToProto(si trace.Subchannel, join func(local, remote string) czIDs) *adminv1.Subchannel {
	ps := &adminv1.Subchannel{
		Id:              si.ID,
		ManagerId:       si.Manager,
		Target:          si.Target,
		Key:             si.Key,
		State:           si.State,
		Refs:            int64(si.Refs),
		Holders:         si.Holders,
		Dialing:         int64(si.Dialing),
		CreateTime:      timestamp(si.Created),
		Age:             durationpb.New(time.Duration(si.Age)),
		Shutdown:        si.Shutdown,
		ShutdownTime:    timestamp(si.ShutdownAt),
		ConnectionsLost: int64(si.ConnectionsLost),
		LastLoss:        si.LastLoss,
	}
	v := joinChannelz(si, join)
	ps.ChannelzSubchannelId, ps.ChannelzChannelId = v.ChannelzSubchannelID, v.ChannelzChannelID
	for _, s := range v.Sockets {
		ps.Sockets = append(ps.Sockets, &adminv1.Socket{
			Id: s.ID, LocalAddress: s.Local, RemoteAddress: s.Remote, OpenTime: timestamp(s.Opened), Goaway: s.GoAway,
			ChannelzSocketId: s.ChannelzSocketID,
		})
	}
	return ps
}

// checkToProto converts r; a problem's subchannel is taken from subs (the
// snapshot r was made from) with its channelz ids.
func checkToProto(r trace.LiveReport, subs []trace.Subchannel, join func(local, remote string) czIDs) *adminv1.CheckLeaksResponse {
	resp := &adminv1.CheckLeaksResponse{
		Subchannels:   int64(r.Subchannels),
		Draining:      int64(r.Draining),
		EventsChecked: int64(r.EventsChecked),
		GracePeriod:   durationpb.New(time.Duration(r.GracePeriod)),
	}
	for _, p := range r.Problems {
		pp := &adminv1.Problem{
			Kind:         string(p.Kind),
			ManagerId:    p.Manager,
			Target:       p.Target,
			SubchannelId: p.Subchannel,
			Key:          p.Key,
			Message:      p.Message,
			Events:       eventsToProto(p.Events),
		}
		if p.SinceShutdown != 0 {
			pp.SinceShutdown = durationpb.New(time.Duration(p.SinceShutdown))
		}
		if i, ok := slices.BinarySearchFunc(subs, p.Subchannel, func(si trace.Subchannel, id uint64) int { return cmp.Compare(si.ID, id) }); ok && p.Subchannel != 0 {
			pp.Subchannel = subchannelToProto(subs[i], join)
		}
		resp.Problems = append(resp.Problems, pp)
	}
	return resp
}
