package admin_test

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// startAdmin serves the admin service on 127.0.0.1 and returns a client of
// it. dialOpts are added to the client's channel (a plain pick_first one:
// it has no leakproof manager of its own).
func startAdmin(t *testing.T, opts []admin.Option, dialOpts ...grpc.DialOption) adminv1.AdminServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	admin.Register(s, opts...)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return adminv1.NewAdminServiceClient(cc)
}

func list(t *testing.T, c adminv1.AdminServiceClient, target string) *adminv1.ListSubchannelsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	resp, err := c.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{Target: target})
	if err != nil {
		t.Fatalf("ListSubchannels: %v", err)
	}
	return resp
}

func checkLeaks(t *testing.T, c adminv1.AdminServiceClient, target string, grace *time.Duration) *adminv1.CheckLeaksResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	req := &adminv1.CheckLeaksRequest{Target: target}
	if grace != nil {
		req.GracePeriod = durationpb.New(*grace)
	}
	resp, err := c.CheckLeaks(ctx, req)
	if err != nil {
		t.Fatalf("CheckLeaks: %v", err)
	}
	return resp
}

// waitList polls ListSubchannels until cond holds.
func waitList(t *testing.T, c adminv1.AdminServiceClient, target, what string, cond func(*adminv1.ListSubchannelsResponse) bool) *adminv1.ListSubchannelsResponse {
	t.Helper()
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		resp := list(t, c, target)
		if cond(resp) {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last list: %v", what, resp)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListSubchannelsShowsHoldersAndSockets(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.EndpointState([]string{bs[0].Addr()}, []string{bs[1].Addr()}), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	other := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, ""), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	other.WaitServed(bs[0].Addr())
	ac := startAdmin(t, nil)

	resp := waitList(t, ac, c.Target, "two READY subchannels with a socket each", func(r *adminv1.ListSubchannelsResponse) bool {
		ready := 0
		for _, sc := range r.GetSubchannels() {
			if sc.GetState() == "READY" && len(sc.GetSockets()) == 1 {
				ready++
			}
		}
		return ready == 2
	})
	if n := len(resp.GetManagers()); n != 1 || resp.GetManagers()[0].GetTarget() != c.Target || resp.GetManagers()[0].GetClosed() {
		t.Fatalf("managers for %s: %v, want one open manager", c.Target, resp.GetManagers())
	}
	if st := resp.GetManagers()[0].GetStats(); st.GetCreated() != 2 || st.GetSocketsOpened() != 2 {
		t.Fatalf("manager stats %v, want 2 created and 2 sockets opened", st)
	}
	if len(resp.GetSubchannels()) != 2 {
		t.Fatalf("%d subchannels, want 2", len(resp.GetSubchannels()))
	}
	for _, sc := range resp.GetSubchannels() {
		want := sc.GetKey()
		if want != bs[0].Addr() && want != bs[1].Addr() {
			t.Fatalf("subchannel %v is to no backend", sc)
		}
		if sc.GetTarget() != c.Target || sc.GetManagerId() != resp.GetManagers()[0].GetId() {
			t.Errorf("subchannel %s: target %q manager %d, want %q %d", want, sc.GetTarget(), sc.GetManagerId(), c.Target, resp.GetManagers()[0].GetId())
		}
		if sc.GetRefs() != 1 || len(sc.GetHolders()) != 1 || !strings.Contains(sc.GetHolders()[0], want) {
			t.Errorf("subchannel %s: refs %d holders %q, want one holder naming the endpoint", want, sc.GetRefs(), sc.GetHolders())
		}
		s := sc.GetSockets()[0]
		if s.GetRemoteAddress() != want || s.GetLocalAddress() == "" || s.GetOpenTime() == nil || s.GetGoaway() {
			t.Errorf("subchannel %s: socket %v, want one to the backend", want, s)
		}
		if sc.GetShutdown() || sc.GetShutdownTime() != nil || sc.GetCreateTime() == nil || sc.GetAge().AsDuration() <= 0 {
			t.Errorf("subchannel %s: shutdown %v at %v, created %v, age %v", want, sc.GetShutdown(), sc.GetShutdownTime(), sc.GetCreateTime(), sc.GetAge())
		}
	}

	all := list(t, ac, "")
	if len(all.GetManagers()) < 2 || len(all.GetSubchannels()) < 3 {
		t.Fatalf("unfiltered list has %d managers and %d subchannels, want both channels' (2 and 3)", len(all.GetManagers()), len(all.GetSubchannels()))
	}
	if r := list(t, ac, "no-such:///target"); len(r.GetManagers())+len(r.GetSubchannels()) != 0 {
		t.Fatalf("list for an unknown target: %v, want empty", r)
	}

	// Closed and destroyed: gone from the registry, so gone from the list.
	c.CC.Close()
	waitList(t, ac, c.Target, "the closed channel to disappear", func(r *adminv1.ListSubchannelsResponse) bool {
		return len(r.GetManagers())+len(r.GetSubchannels()) == 0
	})
}

// watch opens a WatchEvents stream.
func watch(t *testing.T, ctx context.Context, c adminv1.AdminServiceClient, req *adminv1.WatchEventsRequest) adminv1.AdminService_WatchEventsClient {
	t.Helper()
	st, err := c.WatchEvents(ctx, req)
	if err != nil {
		t.Fatalf("WatchEvents: %v", err)
	}
	return st
}

// churn alternates the client between bs[0] alone and every backend,
// making one RPC each time, until stop is closed.
func churn(c *e2e.Client, bs []string, stop <-chan struct{}, errc chan<- error) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			errc <- nil
			return
		default:
		}
		if i%2 == 0 {
			c.R.UpdateState(e2e.AddrState(bs...))
		} else {
			c.R.UpdateState(e2e.AddrState(bs[0]))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Echo.Echo(ctx, &echov1.EchoRequest{Message: "churn"}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			errc <- err
			return
		}
	}
}

func TestWatchEventsReplaysThenGoesLiveWithoutGapsOrDuplicates(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, `{"traceRingSize": 100000}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	ac := startAdmin(t, nil)

	// The watch starts while the channel churns, so events are emitted while
	// the rings are read and the subscription starts.
	stop, errc := make(chan struct{}), make(chan error, 1)
	go churn(c, e2e.Addrs(bs), stop, errc)
	time.Sleep(20 * time.Millisecond)

	// And some events certainly land between the subscription and the
	// reading of the rings: they reach both, and must be sent once.
	admin.SetTestHookBeforeReplay(func() {
		n := len(c.Trace.Events())
		for deadline := time.Now().Add(e2e.LongTimeout); len(c.Trace.Events()) < n+5 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	})
	defer admin.SetTestHookBeforeReplay(nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := watch(t, ctx, ac, &adminv1.WatchEventsRequest{FromSeq: 1, Target: c.Target})
	var got []trace.Event
	replayed, live := 0, 0
	for live < 200 {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("Recv after %d events: %v", len(got), err)
		}
		if resp.GetReplayed() {
			if live > 0 {
				t.Fatalf("replayed event %v after a live one", resp.GetEvent())
			}
			replayed++
		} else {
			live++
		}
		got = append(got, admin.EventFromProto(resp.GetEvent()))
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("RPC during churn: %v", err)
	}
	cancel()
	if replayed == 0 {
		t.Fatal("no event replayed from the ring")
	}

	// One channel, one manager: the stream is exactly the channel's trace
	// (recorded since before the channel existed) from its first event on.
	want := c.Trace.Events()
	if got[0].Seq != want[0].Seq || got[0].Kind != trace.KindManagerOpen {
		t.Fatalf("first event %v, want the manager_open the ring still holds (%v)", got[0], want[0])
	}
	if len(want) < len(got) {
		t.Fatalf("watch delivered %d events, the recorder saw %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Kind != want[i].Kind || got[i].Subchannel != want[i].Subchannel {
			t.Fatalf("event %d (after %d replayed): got %v, want %v", i, replayed, got[i], want[i])
		}
	}
}

func TestWatchEventsFilters(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	other := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	other.WaitServed(e2e.Addrs(bs)...)
	ac := startAdmin(t, nil)
	var sc1 uint64
	for _, sc := range list(t, ac, c.Target).GetSubchannels() {
		if sc.GetKey() == bs[1].Addr() {
			sc1 = sc.GetId()
		}
	}
	if sc1 == 0 {
		t.Fatalf("no subchannel for %s", bs[1].Addr())
	}

	for _, tc := range []struct {
		name string
		req  *adminv1.WatchEventsRequest
		ok   func(trace.Event) bool
	}{
		{"target", &adminv1.WatchEventsRequest{FromSeq: 1, Target: c.Target}, func(e trace.Event) bool { return e.Target == c.Target }},
		{"key", &adminv1.WatchEventsRequest{FromSeq: 1, Key: bs[1].Addr()}, func(e trace.Event) bool { return e.Key == bs[1].Addr() }},
		{"subchannel", &adminv1.WatchEventsRequest{FromSeq: 1, SubchannelId: sc1}, func(e trace.Event) bool { return e.Subchannel == sc1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
			defer cancel()
			st := watch(t, ctx, ac, tc.req)
			// The ring holds create, ref, connect, states and socket_open
			// of every subchannel: at least 5 events pass any of the filters.
			for i := range 5 {
				resp, err := st.Recv()
				if err != nil {
					t.Fatalf("Recv %d: %v", i, err)
				}
				if e := admin.EventFromProto(resp.GetEvent()); !tc.ok(e) {
					t.Fatalf("event %v passed the filter %v", e, tc.req)
				}
			}
		})
	}
	// Live events pass the filter too: the other channel's subchannel to
	// bs[1] goes first, then c's; only c's reaches the watcher.
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	st := watch(t, ctx, ac, &adminv1.WatchEventsRequest{FromSeq: 1, SubchannelId: sc1})
	if _, err := st.Recv(); err != nil { // replayed: the stream is subscribed
		t.Fatal(err)
	}
	other.R.UpdateState(e2e.AddrState(bs[0].Addr()))
	other.Trace.WaitFor(t, "the other channel to destroy its subchannel", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindDestroy {
				return true
			}
		}
		return false
	})
	c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
	for {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		e := admin.EventFromProto(resp.GetEvent())
		if e.Subchannel != sc1 {
			t.Fatalf("watch of #%d got %v", sc1, e)
		}
		if e.Kind == trace.KindDestroy {
			if resp.GetReplayed() {
				t.Fatalf("destroy of #%d replayed, want live", sc1)
			}
			break
		}
	}
}

func TestCheckLeaksReportsSocketsOpenAfterShutdown(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, `{"drainTimeout": "1h"}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	ac := startAdmin(t, nil)
	if r := checkLeaks(t, ac, c.Target, nil); len(r.GetProblems()) != 0 || r.GetSubchannels() != 1 || r.GetEventsChecked() == 0 {
		t.Fatalf("check of a healthy channel: %v, want clean, 1 subchannel, events checked", r)
	}
	if g := checkLeaks(t, ac, c.Target, nil).GetGracePeriod().AsDuration(); g != admin.DefaultGracePeriod {
		t.Fatalf("default grace period %v, want %v", g, admin.DefaultGracePeriod)
	}

	// A stream on b0 keeps its socket open after pick_first moves to b1 and
	// the subchannel is shut down: grpc closes it only when the stream ends.
	holdCtx, endHold := context.WithCancel(context.Background())
	defer endHold()
	hold, err := c.Echo.Hold(holdCtx, &echov1.HoldRequest{Label: "drain"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(); err != nil {
		t.Fatal(err)
	}
	c.R.UpdateState(e2e.AddrState(bs[1].Addr()))
	c.WaitServed(bs[1].Addr())
	waitList(t, ac, c.Target, "b0's subchannel shut down with its socket open", func(r *adminv1.ListSubchannelsResponse) bool {
		for _, sc := range r.GetSubchannels() {
			if sc.GetKey() == bs[0].Addr() && sc.GetShutdown() && len(sc.GetSockets()) == 1 {
				return true
			}
		}
		return false
	})

	r := checkLeaks(t, ac, c.Target, nil)
	if len(r.GetProblems()) != 0 || r.GetDraining() != 1 {
		t.Fatalf("within the grace period: %v, want no problem and 1 draining", r)
	}
	// A socket of a subchannel that is not READY gets its channelz id once
	// it has been listed for a while (see the admin package's Channelz).
	tiny := time.Nanosecond
	deadline := time.Now().Add(e2e.LongTimeout)
	for {
		r = checkLeaks(t, ac, c.Target, &tiny)
		if ps := r.GetProblems(); len(ps) != 1 || len(ps[0].GetSubchannel().GetSockets()) != 1 || ps[0].GetSubchannel().GetSockets()[0].GetChannelzSocketId() != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(r.GetProblems()) != 1 {
		t.Fatalf("with no grace period: %d problems %v, want 1", len(r.GetProblems()), r.GetProblems())
	}
	p := r.GetProblems()[0]
	if p.GetKind() != "sockets_open_after_shutdown" || p.GetKey() != bs[0].Addr() || p.GetTarget() != c.Target || p.GetSinceShutdown().AsDuration() <= 0 {
		t.Fatalf("problem %v, want sockets_open_after_shutdown for %s with the time since shutdown", p, bs[0].Addr())
	}
	if !strings.Contains(p.GetMessage(), "->"+bs[0].Addr()) {
		t.Errorf("message %q does not name the open socket", p.GetMessage())
	}
	// The problem carries the subchannel as the list shows it: its draining
	// socket, joined with channelz, which still lists it.
	if sc := p.GetSubchannel(); sc.GetId() != p.GetSubchannelId() || len(sc.GetSockets()) != 1 ||
		sc.GetSockets()[0].GetRemoteAddress() != bs[0].Addr() || sc.GetSockets()[0].GetChannelzSocketId() == 0 || sc.GetChannelzSubchannelId() == 0 {
		t.Errorf("problem's subchannel %v: want #%d with its open socket to %s and their channelz ids", sc, p.GetSubchannelId(), bs[0].Addr())
	}
	kinds := map[string]bool{}
	for _, e := range p.GetEvents() {
		if e.GetSubchannelId() != p.GetSubchannelId() {
			t.Errorf("evidence %v is about another subchannel", e)
		}
		kinds[e.GetKind()] = true
	}
	for _, k := range []string{"create", "ref", "socket_open", "unref", "shutdown"} {
		if !kinds[k] {
			t.Errorf("evidence lacks %s: %v", k, p.GetEvents())
		}
	}

	// The stream ends, the socket closes, the subchannel is destroyed.
	endHold()
	deadline = time.Now().Add(e2e.LongTimeout)
	for len(checkLeaks(t, ac, c.Target, &tiny).GetProblems()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("still a problem after the held stream ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCheckLeaksPartialRingGivesNoFalsePositive(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	// A ring of 3 events keeps the middle of lifecycles only: unrefs,
	// shutdowns and socket closes whose create and refs were dropped.
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, `{"traceRingSize": 3}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	ac := startAdmin(t, nil)
	// Sockets close just after Shutdown: a second is ample for that, and
	// keeps the check about the ring's history, not about draining.
	grace := time.Second
	sawPartial := false
	for i := range 60 {
		if i%2 == 0 {
			c.R.UpdateState(e2e.AddrState(e2e.Addrs(bs)...))
		} else {
			c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
		}
		if _, err := c.EchoOK(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := checkLeaks(t, ac, c.Target, &grace)
		for _, p := range r.GetProblems() {
			t.Errorf("false positive at step %d: %v", i, p)
		}
		if r.GetEventsChecked() > 3 {
			t.Fatalf("%d events checked from a ring of 3", r.GetEventsChecked())
		}
		sawPartial = sawPartial || r.GetEventsChecked() == 3
	}
	if !sawPartial {
		t.Fatal("the ring never filled: the test did not check a partial history")
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}

func TestCheckLeaksRejectsANegativeGracePeriod(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	ac := startAdmin(t, nil)
	_, err := ac.CheckLeaks(context.Background(), &adminv1.CheckLeaksRequest{GracePeriod: durationpb.New(-time.Second)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "grace_period") {
		t.Fatalf("negative grace period: %v, want InvalidArgument naming grace_period", err)
	}
}

var resumeRE = regexp.MustCompile(`resume from seq (\d+)`)

func TestSlowWatcherIsDroppedAndTheChannelNeverWaits(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	const buf = 16
	// The watcher's channel has fixed 64 KiB flow-control windows (no BDP
	// growth), so a watcher that does not read stalls the server's sends
	// after a few hundred events.
	ac := startAdmin(t, []admin.Option{admin.WatchBuffer(buf)},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	before := list(t, ac, "").GetDroppedWatchers()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := watch(t, ctx, ac, &adminv1.WatchEventsRequest{Target: c.Target})
	waitList(t, ac, "", "the watcher to subscribe", func(r *adminv1.ListSubchannelsResponse) bool { return r.GetActiveWatchers() >= 1 })

	// Churn while the watcher reads nothing. Every RPC must succeed
	// promptly: the balancer never waits for the watcher.
	deadline := time.Now().Add(e2e.LongTimeout)
	slowest := time.Duration(0)
	steps := 0
	for list(t, ac, "").GetDroppedWatchers() == before {
		if time.Now().After(deadline) {
			t.Fatalf("watcher not dropped after %d churn steps (%d events)", steps, len(c.Trace.Events()))
		}
		if steps%2 == 0 {
			c.R.UpdateState(e2e.AddrState(e2e.Addrs(bs)...))
		} else {
			c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
		}
		start := time.Now()
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Echo.Echo(rctx, &echov1.EchoRequest{Message: "churn"}, grpc.WaitForReady(true))
		rcancel()
		if err != nil {
			t.Fatalf("RPC %d while the watcher stalls: %v", steps, err)
		}
		slowest = max(slowest, time.Since(start))
		steps++
	}
	produced := len(c.Trace.Events())
	t.Logf("dropped after %d churn steps, %d events; slowest RPC %v", steps, produced, slowest)
	// The channel keeps working after the drop, too.
	for range 5 {
		c.R.UpdateState(e2e.AddrState(e2e.Addrs(bs)...))
		c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
		if _, err := c.EchoOK(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	// Reading now: what was buffered, then the status.
	var last uint64
	received := 0
	for {
		resp, err := st.Recv()
		if err == nil {
			received++
			last = resp.GetEvent().GetSeq()
			continue
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "fell behind") {
			t.Fatalf("stream ended with %v, want RESOURCE_EXHAUSTED: subscriber fell behind", err)
		}
		m := resumeRE.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("status %q does not say where to resume", err)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		if n == 0 || n > last+1 {
			t.Fatalf("resume from seq %d after receiving up to seq %d: would skip events", n, last)
		}
		break
	}
	if received >= produced {
		t.Fatalf("received %d of %d events: the watcher was not behind", received, produced)
	}
}
