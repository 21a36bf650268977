package admin

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// service implements adminv1.AdminServiceServer over subconn.Managers.
type service struct {
	adminv1.UnimplementedAdminServiceServer
	o options // read-only after Register
}

func (s *service) ListSubchannels(_ context.Context, req *adminv1.ListSubchannelsRequest) (*adminv1.ListSubchannelsResponse, error) {
	ms := collect(req.GetTarget())
	resp := &adminv1.ListSubchannelsResponse{
		ActiveWatchers:       uint64(max(watchers.active.Load(), 0)),
		DroppedWatchers:      watchers.dropped.Load(),
		DroppedSubscriptions: trace.DroppedSubscriptions(),
	}
	for _, m := range ms {
		resp.Managers = append(resp.Managers, managerToProto(m))
	}
	for _, si := range allSubchannels(ms) {
		resp.Subchannels = append(resp.Subchannels, subchannelToProto(si))
	}
	return resp, nil
}

func (s *service) CheckLeaks(_ context.Context, req *adminv1.CheckLeaksRequest) (*adminv1.CheckLeaksResponse, error) {
	grace := DefaultGracePeriod
	if g := req.GetGracePeriod(); g != nil {
		if err := g.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "admin: grace_period: %v", err)
		}
		if grace = g.AsDuration(); grace < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "admin: grace_period %v is negative", grace)
		}
	}
	return checkToProto(trace.CheckLive(time.Now(), grace, collect(req.GetTarget()))), nil
}

// eventFilter is the part of a WatchEventsRequest that selects events.
type eventFilter struct {
	target, key string
	subchannel  uint64
}

func (f eventFilter) match(e *trace.Event) bool {
	return (f.target == "" || e.Target == f.target) &&
		(f.key == "" || e.Key == f.key) &&
		(f.subchannel == 0 || e.Subchannel == f.subchannel)
}

// testHookBeforeReplay, if set, runs between the subscription and the
// reading of the rings: tests make events there, which then reach both.
var testHookBeforeReplay atomic.Pointer[func()]

// resumeWindow is how many of the latest delivered seqs a stream remembers
// to name a safe resume point when it is dropped (see resumeFrom).
const resumeWindow = 64

// WatchEvents replays the rings, then streams live events.
//
// No gap and no duplicate across the switch: the subscription starts before
// the rings are read, and a manager adds an event to its ring and publishes
// it under one lock, so every event is in the ring snapshot, or published
// after it (seq above the ring's last), or both; live events at or below the
// snapshot's last seq for their manager are skipped.
//
// The stream holds no lock while it sends. If the client stops reading, the
// send blocks, the subscription's buffer fills and subconn drops it (the
// balancers never wait); a poller notices within dropPoll and counts it, and
// the stream ends with RESOURCE_EXHAUSTED as soon as the transport lets the
// handler return.
func (s *service) WatchEvents(req *adminv1.WatchEventsRequest, stream adminv1.AdminService_WatchEventsServer) error {
	ctx := stream.Context()
	f := eventFilter{target: req.GetTarget(), key: req.GetKey(), subchannel: req.GetSubchannelId()}
	from := req.GetFromSeq()

	sub := trace.Subscribe(s.o.watchBuffer, f.match)
	defer sub.Close()
	watchers.active.Add(1) // after Subscribe: an active watcher is subscribed
	defer watchers.active.Add(-1)

	var dropOnce sync.Once
	recordDrop := func() {
		dropOnce.Do(func() {
			watchers.dropped.Add(1)
			logger.Warningf("admin: WatchEvents stream fell more than %d events behind and was dropped (total dropped: %d)", s.o.watchBuffer, watchers.dropped.Load())
		})
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(dropPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if sub.Dropped() {
					recordDrop()
					return
				}
			}
		}
	}()

	var sent []uint64 // the latest delivered seqs, at most resumeWindow
	send := func(e trace.Event, replayed bool) error {
		if err := stream.Send(&adminv1.WatchEventsResponse{Event: EventToProto(e), Replayed: replayed}); err != nil {
			return err
		}
		if len(sent) == resumeWindow {
			sent = append(sent[:0], sent[1:]...)
		}
		sent = append(sent, e.Seq)
		return nil
	}

	if h := testHookBeforeReplay.Load(); h != nil {
		(*h)()
	}
	ringLast := map[uint64]uint64{} // manager id -> last seq of its ring snapshot
	if from > 0 {
		var replay []trace.Event
		for _, m := range subconn.Managers() {
			if f.target != "" && m.Target() != f.target {
				continue
			}
			for _, e := range m.Trace() {
				ringLast[e.Manager] = max(ringLast[e.Manager], e.Seq)
				if e.Seq >= from && f.match(&e) {
					replay = append(replay, e)
				}
			}
		}
		slices.SortFunc(replay, func(a, b trace.Event) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, e := range replay {
			if err := send(e, true); err != nil {
				return err
			}
		}
	}

	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case e, ok := <-sub.C:
			if !ok {
				if !sub.Dropped() {
					return status.Error(codes.Internal, "admin: event subscription closed")
				}
				recordDrop()
				return status.Errorf(codes.ResourceExhausted,
					"admin: subscriber fell behind (more than %d events); resume from seq %d (events may repeat: skip seqs you have)",
					s.o.watchBuffer, resumeFrom(sent, from))
			}
			if e.Seq < from || e.Seq <= ringLast[e.Manager] {
				continue
			}
			if err := send(e, false); err != nil {
				return err
			}
		}
	}
}

// resumeFrom names the seq a dropped watcher resumes from: the lowest of the
// latest delivered seqs. The events of different managers can be published
// slightly out of seq order, so the event lost at the drop may have a lower
// seq than the last one delivered; it cannot be lower than one delivered a
// window earlier. With nothing delivered, from (at least 1) again.
func resumeFrom(sent []uint64, from uint64) uint64 {
	if len(sent) == 0 {
		return max(from, 1)
	}
	return slices.Min(sent)
}
