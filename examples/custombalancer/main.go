// Command custombalancer runs a client on example_least_request, a policy
// written on the subconn manager in package leastrequest: it shows that
// requests go where the load is lowest, and that a removed backend and a
// closed channel leave no subchannel and no socket behind.
//
//	go run ./examples/custombalancer
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/leakproof/leakproof/examples/custombalancer/leastrequest"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const (
	held    = 20 // streams held open on the first backend before the others arrive
	timeout = 10 * time.Second
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "custombalancer:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	var bs []*testbackend.Backend
	names := map[string]string{} // address -> name
	for i := range 3 {
		b, err := testbackend.Start(testbackend.Name(fmt.Sprintf("backend-%d", i)))
		if err != nil {
			return err
		}
		defer b.Close()
		bs = append(bs, b)
		names[b.Addr()] = b.Name()
	}

	// The trace of this channel, from before it exists.
	r := manual.NewBuilderWithScheme("custombalancer")
	target := r.Scheme() + ":///backends"
	sub := trace.SubscribeMatch(1<<14, trace.Match{Target: target}, nil)
	defer sub.Close()

	r.InitialState(state(bs[0]))
	cc, err := grpc.NewClient(target,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+leastrequest.Name+`":{}}]}`),
	)
	if err != nil {
		return err
	}
	defer cc.Close()
	echo := echov1.NewEchoServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	report(w, "policy", "%s on %s", leastrequest.Name, strings.Join(slices.Sorted(maps.Values(names)), ", "))

	// Load the first backend with long-lived streams, then add two more.
	streamCtx, endStreams := context.WithCancel(ctx)
	defer endStreams()
	first, err := hold(streamCtx, echo, held)
	if err != nil {
		return err
	}
	report(w, fmt.Sprint(held, " streams held open"), "%s", counts(first, names))
	r.UpdateState(state(bs...))
	if err := waitServed(ctx, echo, bs[1].Addr(), bs[2].Addr()); err != nil {
		return err
	}

	// Every new request goes to a less loaded backend.
	more, err := hold(streamCtx, echo, held)
	if err != nil {
		return err
	}
	report(w, fmt.Sprint(held, " more streams"), "%s", counts(more, names))
	unary := map[string]int{}
	for range 30 {
		resp, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		if err != nil {
			return err
		}
		unary[resp.GetBackend().GetAddress()]++
	}
	report(w, "30 unary RPCs", "%s", counts(unary, names))
	if more[bs[0].Addr()] > 0 || unary[bs[0].Addr()] > 0 {
		return fmt.Errorf("the loaded backend still got requests: streams %v, unary %v", more, unary)
	}

	// Removing a backend closes its subchannel and its socket.
	endStreams()
	r.UpdateState(state(bs[1], bs[2]))
	if err := waitSockets(bs[0].Addr(), 0); err != nil {
		return err
	}
	report(w, "backend-0 removed", "0 sockets to it")

	// Closing the channel closes everything; the trace proves it.
	cc.Close()
	var events []trace.Event
	for !destroyedAll(events) {
		select {
		case <-sub.Ready():
			batch, ok := sub.Read(nil)
			if !ok {
				return fmt.Errorf("the trace subscription fell behind")
			}
			events = append(events, batch...)
		case <-ctx.Done():
			return fmt.Errorf("not every subchannel was destroyed: %v", ctx.Err())
		}
	}
	rep := trace.Check(events)
	if !rep.Clean() {
		return fmt.Errorf("trace check: %v", rep.Problems)
	}
	for _, b := range bs {
		if err := waitSockets(b.Addr(), 0); err != nil {
			return err
		}
	}
	report(w, "channel closed", "%d subchannels created, %d destroyed, trace clean, 0 sockets to any backend", rep.Subchannels, rep.Destroyed)
	return nil
}

func state(bs ...*testbackend.Backend) resolver.State {
	var s resolver.State
	for _, b := range bs {
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr()}}})
	}
	return s
}

// hold opens n Hold streams, which stay open until ctx ends, and counts them
// by the backend that serves them.
func hold(ctx context.Context, echo echov1.EchoServiceClient, n int) (map[string]int, error) {
	served := map[string]int{}
	for i := range n {
		stream, err := echo.Hold(ctx, &echov1.HoldRequest{Label: fmt.Sprint(i)}, grpc.WaitForReady(true))
		if err != nil {
			return nil, err
		}
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		served[resp.GetBackend().GetAddress()]++
	}
	return served, nil
}

// waitServed makes RPCs until every address in addrs has served one: until
// then its subchannel is not READY.
func waitServed(ctx context.Context, echo echov1.EchoServiceClient, addrs ...string) error {
	left := map[string]bool{}
	for _, a := range addrs {
		left[a] = true
	}
	for len(left) > 0 {
		resp, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "ready?"}, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		delete(left, resp.GetBackend().GetAddress())
	}
	return nil
}

// waitSockets polls until this process holds want sockets to addr.
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

// destroyedAll reports whether the trace has a destroy for every create.
func destroyedAll(events []trace.Event) bool {
	created, destroyed := 0, 0
	for _, e := range events {
		switch e.Kind {
		case trace.KindCreate:
			created++
		case trace.KindDestroy:
			destroyed++
		}
	}
	return created > 0 && created == destroyed
}

// report prints one labelled line.
func report(w io.Writer, label, format string, args ...any) {
	fmt.Fprintf(w, "%-22s %s\n", label+":", fmt.Sprintf(format, args...))
}

// counts formats requests by backend name.
func counts(by map[string]int, names map[string]string) string {
	var parts []string
	for addr, name := range names {
		parts = append(parts, fmt.Sprintf("%s %d", name, by[addr]))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
