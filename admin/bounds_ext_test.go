package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestWatchersOverTheCapGetResourceExhaustedNamingIt(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	const maxWatchers = 3
	ac := startAdmin(t, []admin.Option{admin.MaxWatchers(maxWatchers)})
	var cancels []context.CancelFunc
	for range maxWatchers {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cancels = append(cancels, cancel)
		watch(t, ctx, ac, &adminv1.WatchEventsRequest{Target: "nothing:///matches"})
	}
	waitList(t, ac, "", "the watchers to subscribe", func(r *adminv1.ListSubchannelsResponse) bool { return r.GetActiveWatchers() == maxWatchers })
	if got := list(t, ac, "").GetMaxWatchers(); got != maxWatchers {
		t.Errorf("max_watchers %d, want %d", got, maxWatchers)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := watch(t, ctx, ac, &adminv1.WatchEventsRequest{}).Recv()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "MaxWatchers(3)") {
		t.Fatalf("watcher over the cap: %v, want RESOURCE_EXHAUSTED naming the cap of 3", err)
	}
	// Closing one makes room for one more.
	cancels[0]()
	waitList(t, ac, "", "a watcher to close", func(r *adminv1.ListSubchannelsResponse) bool { return r.GetActiveWatchers() == maxWatchers-1 })
	watch(t, ctx, ac, &adminv1.WatchEventsRequest{Target: "nothing:///matches"})
	waitList(t, ac, "", "the new watcher to subscribe", func(r *adminv1.ListSubchannelsResponse) bool { return r.GetActiveWatchers() == maxWatchers })
}

func TestWatcherThatStopsReadingIsDroppedAfterTheSendTimeout(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, `{"traceRingSize": 100000}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	// Far more events in the ring than the stream's 64 KiB flow-control
	// window holds: replaying them blocks the server's Send at once.
	for i := 0; len(c.Trace.Events()) < 1500; i++ {
		if i%2 == 0 {
			c.R.UpdateState(e2e.AddrState(e2e.Addrs(bs)...))
			c.WaitServed(e2e.Addrs(bs)...)
		} else {
			c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
		}
	}
	const sendTimeout = 300 * time.Millisecond
	// A buffer far larger than the churn makes: the subscription never
	// overflows, so only the send timeout can drop the watcher.
	ac := startAdmin(t, []admin.Option{admin.WatchBuffer(1 << 20), admin.SendTimeout(sendTimeout)},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	before := list(t, ac, "").GetDroppedWatchers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := watch(t, ctx, ac, &adminv1.WatchEventsRequest{Target: c.Target, FromSeq: 1})
	waitList(t, ac, "", "the watcher that reads nothing to be dropped", func(r *adminv1.ListSubchannelsResponse) bool {
		return r.GetDroppedWatchers() > before
	})
	for {
		_, err := st.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "SendTimeout") || !resumeRE.MatchString(err.Error()) {
			t.Fatalf("stream ended with %v, want DEADLINE_EXCEEDED naming SendTimeout and the seq to resume from", err)
		}
		break
	}
	waitList(t, ac, "", "the dropped watcher to go", func(r *adminv1.ListSubchannelsResponse) bool { return r.GetActiveWatchers() == 0 })
}

func TestBadRequestValuesAreInvalidArgument(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	ac := startAdmin(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"grace 0", func() error {
			_, err := ac.CheckLeaks(ctx, &adminv1.CheckLeaksRequest{GracePeriod: durationpb.New(0)})
			return err
		}, "grace_period 0s"},
		{"negative grace", func() error {
			_, err := ac.CheckLeaks(ctx, &adminv1.CheckLeaksRequest{GracePeriod: durationpb.New(-time.Second)})
			return err
		}, "grace_period -1s"},
		{"negative page size", func() error {
			_, err := ac.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{PageSize: -1})
			return err
		}, "page_size -1"},
		{"forged page token", func() error {
			_, err := ac.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{PageToken: "12"})
			return err
		}, `page_token "12"`},
	} {
		err := tc.call()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument naming %q", tc.name, err, tc.want)
		}
	}
}

func TestListSubchannelsPages(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 5)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	ac := startAdmin(t, nil)
	ctx := context.Background()
	all := list(t, ac, c.Target).GetSubchannels()
	if len(all) != 5 {
		t.Fatalf("%d subchannels, want 5", len(all))
	}
	var ids []uint64
	req := &adminv1.ListSubchannelsRequest{Target: c.Target, PageSize: 2}
	for pages := 1; ; pages++ {
		resp, err := ac.ListSubchannels(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetSubchannels()); n > 2 {
			t.Fatalf("page %d has %d subchannels, want at most 2", pages, n)
		}
		if (req.GetPageToken() == "") != (len(resp.GetManagers()) == 1) {
			t.Fatalf("page %d has %d managers: want the one manager on the first page only", pages, len(resp.GetManagers()))
		}
		for _, sc := range resp.GetSubchannels() {
			ids = append(ids, sc.GetId())
		}
		if resp.GetNextPageToken() == "" {
			if pages != 3 {
				t.Fatalf("%d pages of 2 for 5 subchannels, want 3", pages)
			}
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	for i, sc := range all {
		if i >= len(ids) || ids[i] != sc.GetId() {
			t.Fatalf("pages gave %v, the whole list %v", ids, all)
		}
	}
}

// A watcher whose subscription overflows while its Send is blocked (a
// client that reads nothing) is dropped at once with RESOURCE_EXHAUSTED,
// not after the send timeout.
func TestWatcherBlockedInSendIsDroppedWhenItFallsBehind(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, `{"traceRingSize": 100000}`), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())
	churn := func(i int) {
		if i%2 == 0 {
			c.R.UpdateState(e2e.AddrState(e2e.Addrs(bs)...))
			c.WaitServed(e2e.Addrs(bs)...)
		} else {
			c.R.UpdateState(e2e.AddrState(bs[0].Addr()))
		}
	}
	// More events in the ring than the 64 KiB window holds: the replay
	// blocks the server's Send at once.
	for i := 0; len(c.Trace.Events()) < 1500; i++ {
		churn(i)
	}
	ac := startAdmin(t, []admin.Option{admin.WatchBuffer(16), admin.SendTimeout(time.Hour)},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	before := list(t, ac, "").GetDroppedWatchers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := watch(t, ctx, ac, &adminv1.WatchEventsRequest{Target: c.Target, FromSeq: 1})
	waitList(t, ac, "", "the watcher to subscribe", func(r *adminv1.ListSubchannelsResponse) bool { return r.GetActiveWatchers() >= 1 })
	for i := 0; list(t, ac, "").GetDroppedWatchers() == before; i++ {
		if i > 2000 {
			t.Fatal("a watcher blocked in Send was not dropped after its subscription overflowed")
		}
		churn(i)
	}
	for {
		_, err := st.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "fell behind") || !resumeRE.MatchString(err.Error()) {
			t.Fatalf("stream ended with %v, want RESOURCE_EXHAUSTED: fell behind, with the seq to resume from", err)
		}
		break
	}
}
