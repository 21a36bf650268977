// Command inspect serves leakproof's admin service from a client process
// and watches that client's subchannels through it, as
// `leakproof trace watch` does: it prints each refcount event as the client
// connects, loses a connection and drops a backend, then the live
// subchannel list and the leak check, all read over gRPC from the admin
// service on 127.0.0.1.
//
//	go run ./examples/inspect
//	go run ./examples/inspect -linger 1m   # then, from another shell:
//	go run ./cmd/leakproof trace list --addr 127.0.0.1:PORT
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/leakproof/leakproof/admin"
	_ "github.com/leakproof/leakproof/balancer/roundrobin" // registers leakproof_round_robin
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const timeout = 10 * time.Second

func main() {
	linger := flag.Duration("linger", 0, "keep the client and the admin service up this long at the end, for `leakproof trace` from another shell")
	flag.Parse()
	if err := run(os.Stdout, *linger); err != nil {
		fmt.Fprintln(os.Stderr, "inspect:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, linger time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+linger)
	defer cancel()

	// The process's debug endpoints: the admin service on a gRPC server,
	// and its HTML/JSON view on an HTTP server, both on loopback.
	srv := grpc.NewServer()
	admin.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(lis)
	defer srv.Stop()
	mux := http.NewServeMux()
	mux.Handle("/debug/leakproof/", admin.Handler())
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hsrv := &http.Server{Handler: mux}
	go hsrv.Serve(hlis)
	defer hsrv.Close()
	fmt.Fprintf(w, "admin service on %s, debug page on http://%s/debug/leakproof/\n", lis.Addr(), hlis.Addr())

	// The client under inspection: leakproof_round_robin over two backends.
	a, err := testbackend.Start(testbackend.Name("A"))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := testbackend.Start(testbackend.Name("B"))
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(w, "backends A = %s, B = %s\n", a.Addr(), b.Addr())
	r := manual.NewBuilderWithScheme("inspect")
	r.InitialState(endpoints(a, b))
	target := r.Scheme() + ":///echo"
	cc, err := grpc.NewClient(target,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_round_robin":{}}]}`),
		grpc.WithContextDialer(subconn.Dialer(nil)),
	)
	if err != nil {
		return err
	}
	defer cc.Close()

	// The watch: what `leakproof trace watch --addr ... --target ... --from 1`
	// does, through the admin client. --from 1 replays what the rings hold,
	// so nothing is missed between the call and the first live event.
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	adm := adminv1.NewAdminServiceClient(conn)
	watchCtx, endWatch := context.WithCancel(ctx)
	defer endWatch()
	stream, err := adm.WatchEvents(watchCtx, &adminv1.WatchEventsRequest{FromSeq: 1, Target: target})
	if err != nil {
		return err
	}
	events := make(chan trace.Event)
	go func() {
		defer close(events)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case events <- admin.EventFromProto(resp.GetEvent()):
			case <-watchCtx.Done():
				return
			}
		}
	}()
	// watch prints watched events up to the first that matches.
	watch := func(what string, match func(trace.Event) bool) error {
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return fmt.Errorf("the watch ended before %s", what)
				}
				fmt.Fprintf(w, "  watch | %s\n", e)
				if match(e) {
					return nil
				}
			case <-ctx.Done():
				return fmt.Errorf("no %s in the watch: %v", what, ctx.Err())
			}
		}
	}
	fmt.Fprintf(w, "leakproof trace watch --addr %s --target %s --from 1\n", lis.Addr(), target)

	fmt.Fprintln(w, "client: an RPC")
	if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true)); err != nil {
		return err
	}
	ready := 0
	if err := watch("two READY subchannels", func(e trace.Event) bool {
		if e.Kind == trace.KindState && e.State == "READY" {
			ready++
		}
		return ready == 2
	}); err != nil {
		return err
	}

	fmt.Fprintln(w, "A resets its connections; the same subchannel reconnects")
	a.ResetConns()
	if err := watch("A's lost connection", func(e trace.Event) bool { return e.Key == a.Addr() && e.Kind == trace.KindConnLost }); err != nil {
		return err
	}
	if err := watch("A's reconnection", func(e trace.Event) bool { return e.Key == a.Addr() && e.State == "READY" }); err != nil {
		return err
	}

	fmt.Fprintln(w, "B leaves the resolver's list")
	r.UpdateState(endpoints(a))
	if err := watch("B's destroy", func(e trace.Event) bool { return e.Key == b.Addr() && e.Kind == trace.KindDestroy }); err != nil {
		return err
	}

	// leakproof trace list, and leakproof trace check --addr.
	list, err := adm.ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{Target: target})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "leakproof trace list --addr %s --target %s\n", lis.Addr(), target)
	for _, s := range list.GetSubchannels() {
		fmt.Fprintf(w, "  #%d %s %s refs %d holders %s sockets %d lost %d (%s)\n", s.GetId(), s.GetKey(), s.GetState(),
			s.GetRefs(), strings.Join(s.GetHolders(), ","), len(s.GetSockets()), s.GetConnectionsLost(), s.GetLastLoss())
	}
	check, err := adm.CheckLeaks(ctx, &adminv1.CheckLeaksRequest{Target: target})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "leakproof trace check --addr %s --target %s\n", lis.Addr(), target)
	fmt.Fprintf(w, "  %d subchannel(s) alive, %d event(s) replayed, %d problem(s)\n", check.GetSubchannels(), check.GetEventsChecked(), len(check.GetProblems()))
	if len(list.GetSubchannels()) != 1 || list.GetSubchannels()[0].GetKey() != a.Addr() || len(check.GetProblems()) > 0 {
		return fmt.Errorf("want one subchannel, to A, and no problem: %v, %v", list.GetSubchannels(), check.GetProblems())
	}

	// The same view as JSON from the debug page.
	page := fmt.Sprintf("http://%s/debug/leakproof/json?target=%s", hlis.Addr(), url.QueryEscape(target))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(page)
	if err != nil {
		return err
	}
	var view struct {
		Subchannels []trace.Subchannel `json:"subchannels"`
	}
	err = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: %v", page, err)
	}
	fmt.Fprintf(w, "GET /debug/leakproof/json?target=...: %s, %d subchannel(s)\n", resp.Status, len(view.Subchannels))

	if linger > 0 {
		fmt.Fprintf(w, "lingering %v: go run ./cmd/leakproof trace list --addr %s\n", linger, lis.Addr())
		time.Sleep(linger)
	}
	fmt.Fprintln(w, "client closes")
	cc.Close()
	if err := watch("A's destroy", func(e trace.Event) bool { return e.Key == a.Addr() && e.Kind == trace.KindDestroy }); err != nil {
		return err
	}
	return nil
}

func endpoints(bs ...*testbackend.Backend) resolver.State {
	var s resolver.State
	for _, b := range bs {
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr()}}})
	}
	return s
}
