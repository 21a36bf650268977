package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/credentials/insecure"
)

// startAll serves RegisterAll on 127.0.0.1 and returns a connection to it.
func startAll(t *testing.T) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	cleanup, err := admin.RegisterAll(s)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(func() { s.Stop(); cleanup() })
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// The channelz ids leakproof shows are the ones grpc's channelz service
// serves on the same admin port: the subchannel's id lists the socket's id,
// and that socket has the addresses leakproof's socket has.
func TestSubchannelsCarryTheirChannelzIDs(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	conn := startAll(t)
	ac := adminv1.NewAdminServiceClient(conn)
	cz := channelzpb.NewChannelzClient(conn)
	ctx := context.Background()

	resp := waitList(t, ac, c.Target, "two subchannels with a socket each", func(r *adminv1.ListSubchannelsResponse) bool {
		n := 0
		for _, sc := range r.GetSubchannels() {
			if len(sc.GetSockets()) == 1 {
				n++
			}
		}
		return n == 2
	})
	seen := map[int64]bool{}
	for _, sc := range resp.GetSubchannels() {
		sock := sc.GetSockets()[0]
		if sc.GetChannelzSubchannelId() == 0 || sock.GetChannelzSocketId() == 0 || sc.GetChannelzChannelId() == 0 {
			t.Fatalf("subchannel %v has no channelz ids", sc)
		}
		if seen[sc.GetChannelzSubchannelId()] {
			t.Fatalf("two leakproof subchannels joined to channelz subchannel %d", sc.GetChannelzSubchannelId())
		}
		seen[sc.GetChannelzSubchannelId()] = true
		czsc, err := cz.GetSubchannel(ctx, &channelzpb.GetSubchannelRequest{SubchannelId: sc.GetChannelzSubchannelId()})
		if err != nil {
			t.Fatal(err)
		}
		if got := czsc.GetSubchannel().GetData().GetTarget(); got != sc.GetKey() {
			t.Errorf("channelz subchannel %d is to %q, leakproof's #%d to %q", sc.GetChannelzSubchannelId(), got, sc.GetId(), sc.GetKey())
		}
		found := false
		for _, ref := range czsc.GetSubchannel().GetSocketRef() {
			found = found || ref.GetSocketId() == sock.GetChannelzSocketId()
		}
		if !found {
			t.Errorf("channelz subchannel %d does not list socket %d", sc.GetChannelzSubchannelId(), sock.GetChannelzSocketId())
		}
		czch, err := cz.GetChannel(ctx, &channelzpb.GetChannelRequest{ChannelId: sc.GetChannelzChannelId()})
		if err != nil {
			t.Fatal(err)
		}
		if got := czch.GetChannel().GetData().GetTarget(); got != c.Target {
			t.Errorf("channelz channel %d has target %q, want %q", sc.GetChannelzChannelId(), got, c.Target)
		}
	}
}

// The HTML page and its JSON show every subchannel and socket with the
// channelz ids ListSubchannels gives them.
func TestHandlerShowsTheChannelzIDsListSubchannelsShows(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(e2e.Addrs(bs)...), e2e.Options{})
	c.WaitServed(e2e.Addrs(bs)...)
	ac := adminv1.NewAdminServiceClient(startAll(t))
	resp := waitList(t, ac, c.Target, "two subchannels joined with channelz", func(r *adminv1.ListSubchannelsResponse) bool {
		n := 0
		for _, sc := range r.GetSubchannels() {
			if len(sc.GetSockets()) == 1 && sc.GetSockets()[0].GetChannelzSocketId() != 0 {
				n++
			}
		}
		return n == 2
	})
	srv := startHandler(t)
	_, _, body := get(t, srv, "/debug/leakproof/json?target="+c.Target)
	var v struct {
		Subchannels []struct {
			ID                   uint64 `json:"id"`
			ChannelzSubchannelID int64  `json:"channelz_subchannel_id"`
			ChannelzChannelID    int64  `json:"channelz_channel_id"`
			Sockets              []struct {
				ID               uint64 `json:"id"`
				ChannelzSocketID int64  `json:"channelz_socket_id"`
			} `json:"sockets"`
		} `json:"subchannels"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("JSON view: %v\n%s", err, body)
	}
	_, _, page := get(t, srv, "/debug/leakproof/?target="+c.Target)
	for _, sc := range resp.GetSubchannels() {
		var found bool
		for _, js := range v.Subchannels {
			if js.ID != sc.GetId() {
				continue
			}
			found = true
			if js.ChannelzSubchannelID != sc.GetChannelzSubchannelId() || js.ChannelzChannelID != sc.GetChannelzChannelId() ||
				len(js.Sockets) != 1 || js.Sockets[0].ChannelzSocketID != sc.GetSockets()[0].GetChannelzSocketId() {
				t.Errorf("JSON view of #%d: %+v; ListSubchannels: %v", sc.GetId(), js, sc)
			}
		}
		if !found {
			t.Errorf("JSON view lacks subchannel #%d", sc.GetId())
		}
		for _, want := range []string{
			fmt.Sprintf("subchannel %d<br>channel %d", sc.GetChannelzSubchannelId(), sc.GetChannelzChannelId()),
			fmt.Sprintf("%d (channelz %d)", sc.GetSockets()[0].GetId(), sc.GetSockets()[0].GetChannelzSocketId()),
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
	}
}
