package admin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

	active atomic.Int64 // WatchEvents streams open on this service
}

// Paging of ListSubchannels.
const (
	defaultPageSize = 1000
	maxPageSize     = 10000
	pageTokenPrefix = "after:"
)

func (s *service) ListSubchannels(ctx context.Context, req *adminv1.ListSubchannelsRequest) (*adminv1.ListSubchannelsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Errorf(codes.InvalidArgument, "admin: page_size %d is negative", size)
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	var after uint64
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(tok, pageTokenPrefix), 10, 64)
		if err != nil || !strings.HasPrefix(tok, pageTokenPrefix) {
			return nil, status.Errorf(codes.InvalidArgument, "admin: page_token %q is not one this service gave", tok)
		}
		after = n
	}
	resp := &adminv1.ListSubchannelsResponse{
		ActiveWatchers:       uint64(max(watchers.active.Load(), 0)),
		DroppedWatchers:      watchers.dropped.Load(),
		DroppedSubscriptions: trace.DroppedSubscriptions(),
		MaxWatchers:          uint64(s.o.maxWatchers),
	}
	// Each manager describes at most size+1 subchannels above the token
	// (one more tells whether a next page exists); the page keeps the
	// lowest ids of all. What is copied and dropped is bounded by the
	// managers times the page, never by every subchannel.
	var page []trace.Subchannel
	for _, m := range subconn.Managers() {
		if t := req.GetTarget(); t != "" && m.Target() != t {
			continue
		}
		if after == 0 {
			closed := m.Closed()
			resp.Managers = append(resp.Managers, managerToProto(trace.ManagerState{ID: m.ID(), Target: m.Target(), Closed: closed, Stats: m.Stats()}))
		}
		page = append(page, m.SnapshotPage(after, size+1)...)
		slices.SortFunc(page, func(a, b trace.Subchannel) int { return cmp.Compare(a.ID, b.ID) })
		if len(page) > size+1 {
			page = page[:size+1]
		}
	}
	if len(page) > size {
		page = page[:size]
		resp.NextPageToken = pageTokenPrefix + strconv.FormatUint(page[len(page)-1].ID, 10)
	}
	join := channelzJoin(ctx)
	for _, si := range page {
		resp.Subchannels = append(resp.Subchannels, subchannelToProto(si, join))
	}
	return resp, nil
}

func (s *service) CheckLeaks(ctx context.Context, req *adminv1.CheckLeaksRequest) (*adminv1.CheckLeaksResponse, error) {
	grace := DefaultGracePeriod
	if g := req.GetGracePeriod(); g != nil {
		if err := g.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "admin: grace_period: %v", err)
		}
		if grace = g.AsDuration(); grace <= 0 {
			return nil, status.Errorf(codes.InvalidArgument, "admin: grace_period %v: want more than 0 (every socket finishing its last stream would count as leaked); unset means %v", grace, DefaultGracePeriod)
		}
	}
	ms := collect(req.GetTarget())
	return checkToProto(trace.CheckLive(time.Now(), grace, ms), allSubchannels(ms), channelzJoin(ctx)), nil
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
// The handler only watches: a pump goroutine reads the subscription a batch
// at a time (at most one per trace.ReadPace) and sends. The balancers never wait for either: a subscription
// that falls WatchBuffer events behind is dropped by package trace, and the
// handler then ends the stream with RESOURCE_EXHAUSTED. A client that stops
// reading blocks the pump in Send; a timer armed for each Send fires after
// SendTimeout and the handler returns DEADLINE_EXCEEDED, which ends the
// stream and unblocks the pump. Nothing polls: the handler wakes on the
// pump's end, the subscription's end, the timer or the stream's context.
func (s *service) WatchEvents(req *adminv1.WatchEventsRequest, stream adminv1.AdminService_WatchEventsServer) error {
	if n := s.active.Add(1); n > int64(s.o.maxWatchers) {
		s.active.Add(-1)
		return status.Errorf(codes.ResourceExhausted,
			"admin: %d WatchEvents streams are open, the cap of this service (admin.MaxWatchers(%d)); close one or try again later",
			s.o.maxWatchers, s.o.maxWatchers)
	}
	defer s.active.Add(-1)

	ctx := stream.Context()
	// A Match, not a filter function: the balancers find a watcher by
	// the fields it names, and pay nothing for watchers of other ones.
	f := trace.Match{Target: req.GetTarget(), Key: req.GetKey(), Subchannel: req.GetSubchannelId()}
	from := req.GetFromSeq()
	sub := trace.SubscribeMatch(s.o.watchBuffer, f, nil)
	defer sub.Close()
	watchers.active.Add(1) // after Subscribe: an active watcher is subscribed
	defer watchers.active.Add(-1)

	p := &pump{s: s, stream: stream, sub: sub, f: f, from: from, stall: make(chan struct{}, 1)}
	p.timer = time.AfterFunc(time.Hour, func() {
		select {
		case p.stall <- struct{}{}:
		default:
		}
	})
	p.timer.Stop()
	defer p.timer.Stop()
	errc := make(chan error, 1)
	go func() { errc <- p.run(ctx) }()

	for {
		select {
		case err := <-errc:
			return err
		case <-sub.Done():
			// Only a drop ends the subscription before the handler
			// returns. The pump may be blocked in Send: do not wait for it.
			return p.fellBehind()
		case <-p.stall:
			if !p.stalled(s.o.sendTimeout) {
				continue // the Send the timer was armed for has returned
			}
			s.recordDrop(fmt.Sprintf("did not read for %v", s.o.sendTimeout))
			return status.Errorf(codes.DeadlineExceeded,
				"admin: watcher read nothing for %v (admin.SendTimeout) and was dropped; resume from seq %d (events may repeat: skip seqs you have)",
				s.o.sendTimeout, p.resume())
		}
	}
}

// recordDrop counts and logs a dropped watcher.
func (s *service) recordDrop(why string) {
	n := watchers.dropped.Add(1)
	logger.Warningf("admin: WatchEvents stream dropped: %s (total dropped: %d)", why, n)
}

// A pump sends one WatchEvents stream's events.
type pump struct {
	s      *service
	stream adminv1.AdminService_WatchEventsServer
	sub    *trace.Subscription
	f      trace.Match
	from   uint64
	timer  *time.Timer   // armed for SendTimeout during each Send
	stall  chan struct{} // one slot: the timer fired

	sendStart atomic.Int64 // UnixNano when the Send in progress began; 0 between sends
	dropOnce  sync.Once

	mu   sync.Mutex
	sent []uint64 // the latest seqs sent or being sent, at most resumeWindow
}

// stalled reports whether a Send has been blocked for at least d.
func (p *pump) stalled(d time.Duration) bool {
	t := p.sendStart.Load()
	return t != 0 && time.Since(time.Unix(0, t)) >= d
}

// resume is the seq a dropped stream resumes from.
func (p *pump) resume() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return resumeFrom(p.sent, p.from)
}

// fellBehind counts the drop of a stream whose subscription was dropped
// (once: the pump and the handler may both see it) and returns its status.
func (p *pump) fellBehind() error {
	p.dropOnce.Do(func() { p.s.recordDrop(fmt.Sprintf("fell more than %d events behind", p.s.o.watchBuffer)) })
	return status.Errorf(codes.ResourceExhausted,
		"admin: subscriber fell behind (more than %d events); resume from seq %d (events may repeat: skip seqs you have)",
		p.s.o.watchBuffer, p.resume())
}

// send sends e. Its seq joins sent before the Send: an event whose Send
// never completes may not have reached the client.
func (p *pump) send(e *trace.Event, replayed bool) error {
	p.mu.Lock()
	if len(p.sent) == resumeWindow {
		p.sent = append(p.sent[:0], p.sent[1:]...)
	}
	p.sent = append(p.sent, e.Seq)
	p.mu.Unlock()
	p.sendStart.Store(time.Now().UnixNano())
	p.timer.Reset(p.s.o.sendTimeout)
	err := p.stream.Send(&adminv1.WatchEventsResponse{Event: EventToProto(*e), Replayed: replayed})
	p.timer.Stop()
	p.sendStart.Store(0)
	return err
}

func (p *pump) run(ctx context.Context) error {
	if h := testHookBeforeReplay.Load(); h != nil {
		(*h)()
	}
	ringLast := map[uint64]uint64{} // manager id -> last seq of its ring snapshot
	if p.from > 0 {
		var replay []trace.Event
		for _, m := range subconn.Managers() {
			if p.f.Target != "" && m.Target() != p.f.Target {
				continue
			}
			for _, e := range m.Trace() {
				ringLast[e.Manager] = max(ringLast[e.Manager], e.Seq)
				if e.Seq >= p.from && p.f.Matches(&e) {
					replay = append(replay, e)
				}
			}
		}
		slices.SortFunc(replay, func(a, b trace.Event) int { return cmp.Compare(a.Seq, b.Seq) })
		for i := range replay {
			if err := p.send(&replay[i], true); err != nil {
				return err
			}
		}
	}
	var batch []trace.Event
	for {
		if batch != nil {
			time.Sleep(trace.ReadPace) // let the next batch gather
		}
		var open bool
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case _, open = <-p.sub.Ready():
		}
		batch, _ = p.sub.Read(batch)
		for i := range batch {
			e := &batch[i]
			if e.Seq < p.from || e.Seq <= ringLast[e.Manager] {
				continue
			}
			if err := p.send(e, false); err != nil {
				return err
			}
		}
		if !open {
			if !p.sub.Dropped() {
				return status.Error(codes.Internal, "admin: event subscription closed")
			}
			return p.fellBehind()
		}
	}
}

// resumeFrom names the seq a dropped watcher resumes from: the lowest of the
// latest seqs sent (the last one may not have arrived). The events of
// different managers can be published slightly out of seq order, so the
// event lost at the drop may have a lower seq than the last one sent; it
// cannot be lower than one sent a window earlier. With nothing sent, from:
// the request's from_seq, or 0 (live only) for a live-only stream, which
// lost nothing; never 1, which would replay every ring.
func resumeFrom(sent []uint64, from uint64) uint64 {
	if len(sent) == 0 {
		return from
	}
	return slices.Min(sent)
}
