package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/leakproof/leakproof/admin"
	_ "github.com/leakproof/leakproof/balancer/pickfirst" // registers leakproof_pick_first
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/credentials/insecure"
)

// dialLeakproof returns a client of addr on leakproof_pick_first, with
// socket tracking, after one RPC.
func dialLeakproof(addr string) (*grpc.ClientConn, string) {
	target := "passthrough:///" + addr
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"leakproof_pick_first": {}}]}`),
		grpc.WithContextDialer(subconn.Dialer(nil)))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := echov1.NewEchoServiceClient(cc).Echo(context.Background(), &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true)); err != nil {
		log.Fatal(err)
	}
	return cc, target
}

// Register the admin service on the gRPC server the process already runs,
// then ask it which subchannels a channel holds, as `leakproof trace list`
// does.
func ExampleRegister() {
	b, err := testbackend.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	cc, target := dialLeakproof(b.Addr())
	defer cc.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	admin.Register(s)
	go s.Serve(lis)
	defer s.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := adminv1.NewAdminServiceClient(conn).ListSubchannels(context.Background(), &adminv1.ListSubchannelsRequest{Target: target})
	if err != nil {
		log.Fatal(err)
	}
	for _, sc := range resp.GetSubchannels() {
		fmt.Printf("%s refs=%d holders=%v sockets=%d to backend=%v\n", sc.GetState(), sc.GetRefs(), sc.GetHolders(),
			len(sc.GetSockets()), sc.GetSockets()[0].GetRemoteAddress() == b.Addr())
	}
	// Output:
	// READY refs=1 holders=[pick_first] sockets=1 to backend=true
}

// Mount the handler on a debug HTTP mux, as with net/http/pprof, and read
// the leak check as JSON.
func ExampleHandler() {
	b, err := testbackend.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	cc, target := dialLeakproof(b.Addr())
	defer cc.Close()

	mux := http.NewServeMux()
	mux.Handle("/debug/leakproof/", admin.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	resp, err := srv.Client().Get(srv.URL + "/debug/leakproof/json?target=" + url.QueryEscape(target))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Subchannels []trace.Subchannel `json:"subchannels"`
		Check       struct {
			Problems []json.RawMessage `json:"problems"`
		} `json:"check"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d subchannel(s), %d problem(s)\n", len(v.Subchannels), len(v.Check.Problems))
	// Output:
	// 1 subchannel(s), 0 problem(s)
}

// Convert the events WatchEvents streams back into trace events, to print
// them or replay them with trace.Check.
func ExampleEventFromProto() {
	pe := &adminv1.Event{Seq: 7, SubchannelId: 3, Key: "127.0.0.1:50051", Kind: "unref", RefsBefore: 2, RefsAfter: 1, Holder: "endpoint[1]", State: "READY"}
	fmt.Println(admin.EventFromProto(pe))
	// Output:
	// seq=7 #3 127.0.0.1:50051 unref 2->1 holder=endpoint[1] state=READY
}

// Serve leakproof's admin service beside grpc's channelz on a separate
// admin server, listening on an internal address (here loopback), apart
// from the server that carries traffic, as grpc advises for channelz. Then
// follow a subchannel from leakproof's view to grpc's channelz.
func ExampleRegisterAll() {
	b, err := testbackend.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	cc, target := dialLeakproof(b.Addr())
	defer cc.Close()

	// The admin port: internal only; add TLS if other hosts reach it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	cleanup, err := admin.RegisterAll(s)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	go s.Serve(lis)
	defer s.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	resp, err := adminv1.NewAdminServiceClient(conn).ListSubchannels(context.Background(), &adminv1.ListSubchannelsRequest{Target: target})
	if err != nil {
		log.Fatal(err)
	}
	sc := resp.GetSubchannels()[0]
	czsc, err := channelzpb.NewChannelzClient(conn).GetSubchannel(context.Background(),
		&channelzpb.GetSubchannelRequest{SubchannelId: sc.GetChannelzSubchannelId()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("leakproof subchannel held by %v is channelz subchannel %v: %s, socket listed: %v\n",
		sc.GetHolders(), sc.GetChannelzSubchannelId() != 0, czsc.GetSubchannel().GetData().GetState().GetState(),
		czsc.GetSubchannel().GetSocketRef()[0].GetSocketId() == sc.GetSockets()[0].GetChannelzSocketId())
	// Output:
	// leakproof subchannel held by [pick_first] is channelz subchannel true: READY, socket listed: true
}
