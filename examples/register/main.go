// Command register is the smallest leak-proof gRPC client: it imports
// leakproof_round_robin, names it in the service config and dials through
// the socket-tracking dialer. It prints where its RPCs went, the one
// subchannel and the one socket it holds per backend, and that closing the
// channel closes every socket.
//
//	go run ./examples/register
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	_ "github.com/leakproof/leakproof/balancer/roundrobin" // registers leakproof_round_robin
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const timeout = 10 * time.Second

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "register:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	// Three backends on 127.0.0.1 stand in for a service, and a manual
	// resolver for its name: in production, a target such as
	// "dns:///echo.internal:443" and no WithResolvers.
	r := manual.NewBuilderWithScheme("register")
	var state resolver.State
	var bs []*testbackend.Backend
	for i := range 3 {
		b, err := testbackend.Start(testbackend.Name(fmt.Sprintf("backend-%d", i)))
		if err != nil {
			return err
		}
		defer b.Close()
		bs = append(bs, b)
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr()}}})
	}
	r.InitialState(state)
	target := r.Scheme() + ":///echo"

	// The whole of the setup: the policy by name, and the dialer that gives
	// every socket an owning subchannel.
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
	fmt.Fprintf(w, "client: %s with leakproof_round_robin and subconn.Dialer, 3 backends\n", target)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	echo := echov1.NewEchoServiceClient(cc)
	served := map[string]int{}
	for len(served) < len(bs) { // until every backend is connected
		resp, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hello"}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		served[resp.GetBackend().GetName()]++
	}
	clear(served)
	for range 9 {
		resp, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hello"})
		if err != nil {
			return err
		}
		served[resp.GetBackend().GetName()]++
	}
	fmt.Fprintf(w, "9 RPCs: backend-0 %d, backend-1 %d, backend-2 %d\n", served["backend-0"], served["backend-1"], served["backend-2"])
	if len(served) != len(bs) {
		return fmt.Errorf("the RPCs were not spread over every backend: %v", served)
	}

	// What the channel holds: one subchannel per backend, which owns one
	// socket, and the kernel agrees.
	subchannels := 0
	for _, m := range subconn.Managers() {
		if m.Target() != target {
			continue
		}
		for _, s := range m.Snapshot() {
			subchannels++
			n, err := leaktest.SocketsTo(s.Key)
			if err != nil {
				return err
			}
			if len(s.Sockets) != 1 || n != 1 {
				return fmt.Errorf("subchannel %d to %s owns %d sockets and the process holds %d, want 1", s.ID, s.Key, len(s.Sockets), n)
			}
			fmt.Fprintf(w, "subchannel #%d %s %s refs %d, owns socket %s -> %s\n", s.ID, s.Key, s.State, s.Refs, s.Sockets[0].Local, s.Sockets[0].Remote)
		}
	}
	if subchannels != len(bs) {
		return fmt.Errorf("%d subchannels for %d backends", subchannels, len(bs))
	}

	cc.Close()
	for _, b := range bs {
		if err := waitSockets(b.Addr(), 0); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "channel closed: 0 sockets to any backend")
	return nil
}

// waitSockets polls until this process holds want sockets to addr: grpc
// closes connections gracefully, so not always before Close returns.
func waitSockets(addr string, want int) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := leaktest.SocketsTo(addr)
		if err != nil {
			return err
		}
		if n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sockets to %s after %v, want %d", n, addr, timeout, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
