// Command duplicates replays gRPC C-core's grpc/grpc#38871 in Go: two holders
// of one backend lose their connection to a GOAWAY and then to a closed
// socket, and the backend is removed. In C-core the second subchannel's socket
// was never released. Here the two endpoints {A} and {A,B} share one
// subchannel to A under leakproof_round_robin; the example prints its
// refcount trace, which ends in destroy with every socket closed, and what
// grpc-go's own round_robin does with the same endpoints: two sockets to A.
//
//	go run ./examples/duplicates
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	_ "github.com/leakproof/leakproof/balancer/roundrobin" // registers leakproof_round_robin
	"github.com/leakproof/leakproof/leaktest"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const (
	maxAge  = 800 * time.Millisecond // A's MaxConnectionAge (grpc takes up to 10% off)
	timeout = 10 * time.Second
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "duplicates:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	// A sends GOAWAY on every connection when it is maxAge old.
	a, err := testbackend.Start(testbackend.Name("A"), testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      maxAge,
		MaxConnectionAgeGrace: 100 * time.Millisecond,
	}))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := testbackend.Start(testbackend.Name("B"))
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(w, "A = %s, B = %s; endpoints {A} and {A,B}\n\n", a.Addr(), b.Addr())
	overlapping := endpoints([]string{a.Addr()}, []string{a.Addr(), b.Addr()})

	if err := leakproof(w, a, b, overlapping); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return grpcRoundRobin(w, a, overlapping)
}

// leakproof runs the incident on leakproof_round_robin and prints the trace.
func leakproof(w io.Writer, a, b *testbackend.Backend, state resolver.State) error {
	r := manual.NewBuilderWithScheme("duplicates")
	target := r.Scheme() + ":///svc"
	rec := newRecorder(target)
	defer rec.close()
	r.InitialState(state)
	cc, err := dial(r, "leakproof_round_robin", grpc.WithContextDialer(subconn.Dialer(nil)))
	if err != nil {
		return err
	}
	defer cc.Close()
	cc.Connect()
	fmt.Fprintln(w, "leakproof_round_robin:")

	// Both endpoints hold the one subchannel to A, over one socket.
	if _, err := rec.waitFor(func(e trace.Event) bool { return e.Key == a.Addr() && e.State == "READY" }); err != nil {
		return err
	}
	if err := waitSockets(a.Addr(), 1); err != nil {
		return err
	}
	s, err := subchannel(target, a.Addr())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  connected:      1 socket to A (leaktest.SocketsTo), subchannel #%d held by %d: %s\n", s.ID, s.Refs, strings.Join(s.Holders, ", "))

	// GOAWAY: A's connections reach their MaxConnectionAge.
	goaway, err := rec.waitFor(func(e trace.Event) bool { return e.Key == a.Addr() && e.Kind == trace.KindGoAway })
	if err != nil {
		return err
	}
	if s, err = subchannel(target, a.Addr()); err != nil {
		return err
	}
	fmt.Fprintf(w, "  GOAWAY:         %s; subchannel #%d, still held by %d, reconnects\n", goaway.Reason, s.ID, s.Refs)

	// Socket closed: A resets the connection the subchannel reopened. A's
	// connections also age out; on a slow machine the reopened one may reach
	// its GOAWAY before the reset: then reset the next one.
	var lost trace.Event
	for attempt := 1; ; attempt++ {
		if _, err := rec.waitFor(func(e trace.Event) bool { return e.Key == a.Addr() && e.State == "READY" }); err != nil {
			return err
		}
		a.ResetConns()
		if lost, err = rec.waitFor(func(e trace.Event) bool { return e.Key == a.Addr() && e.Kind == trace.KindConnLost }); err != nil {
			return err
		}
		if lost.Cause == trace.CauseReset || attempt == 3 {
			break
		}
	}
	if s, err = subchannel(target, a.Addr()); err != nil {
		return err
	}
	fmt.Fprintf(w, "  socket closed:  %s; subchannel #%d, still held by %d, reconnects\n", lost.Reason, s.ID, s.Refs)

	// A leaves the resolver's list, then the channel closes.
	r.UpdateState(endpoints([]string{b.Addr()}))
	if err := waitSockets(a.Addr(), 0); err != nil {
		return err
	}
	fmt.Fprintln(w, "  A removed:      0 sockets to A")
	cc.Close()
	if _, err := rec.waitFor(func(trace.Event) bool { return rec.allDestroyed() }); err != nil {
		return err
	}

	fmt.Fprintln(w, "  channel closed; the refcount trace of A:")
	opened, closed, destroyed := 0, 0, false
	for _, e := range rec.events {
		if e.Key != a.Addr() {
			continue
		}
		fmt.Fprintf(w, "    %s\n", e)
		switch e.Kind {
		case trace.KindSocketOpen:
			opened++
		case trace.KindSocketClose:
			closed++
		case trace.KindDestroy:
			destroyed = true
		}
	}
	rep := trace.Check(rec.events)
	if !destroyed || opened != closed || !rep.Clean() {
		return fmt.Errorf("A's subchannel: destroyed %v, %d sockets opened, %d closed, problems %v", destroyed, opened, closed, rep.Problems)
	}
	fmt.Fprintf(w, "  A: %d sockets opened, %d closed, subchannel destroyed\n", opened, closed)
	fmt.Fprintf(w, "  trace.Check: %d subchannels, %d destroyed, clean\n", rep.Subchannels, rep.Destroyed)
	return nil
}

// grpcRoundRobin shows grpc-go's round_robin with the same endpoints: each
// endpoint runs its own pick_first, and both connect to A.
func grpcRoundRobin(w io.Writer, a *testbackend.Backend, state resolver.State) error {
	r := manual.NewBuilderWithScheme("duplicates-grpc")
	r.InitialState(state)
	cc, err := dial(r, "round_robin")
	if err != nil {
		return err
	}
	defer cc.Close()
	cc.Connect()
	// Well before A's first GOAWAY, when a draining socket could be counted.
	if err := waitSocketsWithin(a.Addr(), 2, maxAge/2); err != nil {
		return err
	}
	fmt.Fprintln(w, "grpc-go round_robin, same endpoints:")
	fmt.Fprintln(w, "  connected:      2 sockets to A (leaktest.SocketsTo), one per endpoint")
	cc.Close()
	if err := waitSockets(a.Addr(), 0); err != nil {
		return err
	}
	return nil
}

// subchannel describes the channel's subchannel to addr. Both endpoints must
// hold it.
func subchannel(target, addr string) (trace.Subchannel, error) {
	for _, m := range subconn.Managers() {
		for _, s := range m.Snapshot() {
			if m.Target() == target && s.Key == addr && !s.Shutdown {
				if s.Refs != 2 {
					return s, fmt.Errorf("subchannel #%d to %s has %d references (%v), want 2: one per endpoint", s.ID, addr, s.Refs, s.Holders)
				}
				return s, nil
			}
		}
	}
	return trace.Subchannel{}, fmt.Errorf("no subchannel to %s", addr)
}

func dial(r *manual.Resolver, policy string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(r.Scheme()+":///svc", append([]grpc.DialOption{
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, policy)),
	}, opts...)...)
}

func endpoints(eps ...[]string) resolver.State {
	var s resolver.State
	for _, ep := range eps {
		var e resolver.Endpoint
		for _, addr := range ep {
			e.Addresses = append(e.Addresses, resolver.Address{Addr: addr})
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

// recorder collects the refcount events of one channel target.
type recorder struct {
	sub    *trace.Subscription
	events []trace.Event
	seen   int // events already matched by waitFor
}

func newRecorder(target string) *recorder {
	return &recorder{sub: trace.SubscribeMatch(1<<14, trace.Match{Target: target}, nil)}
}

func (t *recorder) close() { t.sub.Close() }

// waitFor returns the first event not yet matched that satisfies match.
func (t *recorder) waitFor(match func(trace.Event) bool) (trace.Event, error) {
	deadline := time.After(timeout)
	for {
		for ; t.seen < len(t.events); t.seen++ {
			if match(t.events[t.seen]) {
				t.seen++
				return t.events[t.seen-1], nil
			}
		}
		select {
		case <-t.sub.Ready():
			batch, ok := t.sub.Read(nil)
			if !ok {
				return trace.Event{}, fmt.Errorf("the trace subscription fell behind")
			}
			t.events = append(t.events, batch...)
		case <-deadline:
			return trace.Event{}, fmt.Errorf("timed out waiting for an event; trace so far:\n%s", t.format())
		}
	}
}

// allDestroyed reports whether every subchannel created has been destroyed.
func (t *recorder) allDestroyed() bool {
	n := 0
	for _, e := range t.events {
		switch e.Kind {
		case trace.KindCreate:
			n++
		case trace.KindDestroy:
			n--
		}
	}
	return n == 0
}

func (t *recorder) format() string {
	var b strings.Builder
	for _, e := range t.events {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

// waitSockets polls until this process holds want sockets to addr.
func waitSockets(addr string, want int) error { return waitSocketsWithin(addr, want, timeout) }

func waitSocketsWithin(addr string, want int, timeout time.Duration) error {
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
