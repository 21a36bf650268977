package subconn_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	_ "github.com/leakproof/leakproof/balancer/pickfirst" // registers leakproof_pick_first
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	grpcpickfirst "google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
)

// managerPolicy is the smallest balancer that owns a subconn.Manager: it
// builds one and closes it, and does nothing else. The examples of Acquire
// and Set drive its manager the way a real policy would from its methods.
// examples/custombalancer is a whole policy built this way.
const managerPolicy = "subconn_example_manager"

// built hands the examples the manager of the channel they just connected.
var built = make(chan *subconn.Manager, 1)

type managerBuilder struct{}

func (managerBuilder) Name() string { return managerPolicy }

func (managerBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	m := subconn.NewManager(cc, subconn.WithTarget(opts.Target.String())) // one manager per balancer, built in Build...
	built <- m
	return managerBalancer{m}
}

type managerBalancer struct{ m *subconn.Manager }

func (b managerBalancer) Close()                                                   { b.m.Close() } // ...and closed in Close
func (managerBalancer) UpdateClientConnState(balancer.ClientConnState) error       { return nil }
func (managerBalancer) ResolverError(error)                                        {}
func (managerBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}
func (managerBalancer) ExitIdle()                                                  {}

// sharedPickFirst is a whole policy in a few lines: grpc's own pick_first,
// its subchannels owned by a manager (see ExampleManager_ClientConn).
const sharedPickFirst = "subconn_example_pick_first"

type pickFirstBuilder struct{}

func (pickFirstBuilder) Name() string { return sharedPickFirst }

func (pickFirstBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	m := subconn.NewManager(cc, subconn.WithTarget(opts.Target.String()))
	child := balancer.Get(grpcpickfirst.Name).Build(m.ClientConn(cc, "pick_first"), opts)
	return &pickFirstOnManager{Balancer: child, m: m}
}

type pickFirstOnManager struct {
	balancer.Balancer
	m *subconn.Manager
}

func (b *pickFirstOnManager) Close() {
	b.Balancer.Close() // pick_first shuts its SubConns down: the manager releases them
	b.m.Close()
}

func init() {
	balancer.Register(managerBuilder{})
	balancer.Register(pickFirstBuilder{})
}

// dial returns a connected channel to addrs using policy, with the
// socket-tracking dialer.
func dial(policy string, addrs ...string) (*grpc.ClientConn, error) {
	target := "passthrough:///" + addrs[0]
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, policy)),
	)
	if err != nil {
		return nil, err
	}
	cc.Connect()
	return cc, nil
}

// managerOf connects a channel on managerPolicy and returns its manager.
func managerOf(addr string) (*subconn.Manager, *grpc.ClientConn, error) {
	cc, err := dial(managerPolicy, addr)
	if err != nil {
		return nil, nil, err
	}
	select {
	case m := <-built:
		return m, cc, nil
	case <-time.After(10 * time.Second):
		cc.Close()
		return nil, nil, fmt.Errorf("the policy was never built")
	}
}

// kinds lists the kinds of the subchannel events in events.
func kinds(events []trace.Event) string {
	var ks []string
	for _, e := range events {
		if e.Subchannel != 0 {
			ks = append(ks, string(e.Kind))
		}
	}
	return strings.Join(ks, " ")
}

func ExampleManager_Acquire() {
	b, err := testbackend.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	m, cc, err := managerOf(b.Addr()) // in a policy: m := subconn.NewManager(cc) in Build
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()

	// Two holders (two endpoints, say) that name the same backend share one
	// subchannel, and count 1→2.
	addr := resolver.Address{Addr: b.Addr()}
	first, _ := m.Acquire(addr, "endpoint-1")
	second, _ := m.Acquire(addr, "endpoint-2")
	fmt.Println("one subchannel:", first.Unwrap() == second.Unwrap())
	fmt.Println("holders:", m.Snapshot()[0].Holders)

	// The last Release shuts it down, exactly once.
	first.Release("endpoint-1 removed")
	fmt.Println("after one release:", len(m.Snapshot()), "subchannel, refs", m.Snapshot()[0].Refs)
	second.Release("endpoint-2 removed")
	fmt.Println("after both:", len(m.Snapshot()), "subchannels")
	fmt.Println("release again:", errors.Is(second.Release("again"), subconn.ErrReleased))
	fmt.Println("trace:", kinds(m.Trace()))
	// Output:
	// one subchannel: true
	// holders: [endpoint-1 endpoint-2]
	// after one release: 1 subchannel, refs 1
	// after both: 0 subchannels
	// release again: true
	// trace: create ref ref unref unref shutdown destroy
}

func ExampleSet_Sync() {
	var bs []*testbackend.Backend
	name := map[string]string{} // address -> A, B, C
	for _, n := range []string{"A", "B", "C"} {
		b, err := testbackend.Start(testbackend.Name(n))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer b.Close()
		bs = append(bs, b)
		name[b.Addr()] = n
	}
	m, cc, err := managerOf(bs[0].Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	names := func(scs []*subconn.SubConn) []string {
		var ns []string
		for _, sc := range scs {
			ns = append(ns, name[sc.Key()])
		}
		slices.Sort(ns)
		return ns
	}
	addrs := func(bs ...*testbackend.Backend) []resolver.Address {
		var as []resolver.Address
		for _, b := range bs {
			as = append(as, resolver.Address{Addr: b.Addr()})
		}
		return as
	}

	// The listener gets the state of every SubConn in the set. In a policy
	// it runs concurrently with the policy's methods: guard state with a
	// mutex, as examples/custombalancer does.
	ready := make(chan string, 10)
	set := m.NewSet("my-policy", func(sc *subconn.SubConn, s balancer.SubConnState) {
		if s.ConnectivityState == connectivity.Ready {
			ready <- name[sc.Key()]
		}
	}, subconn.WithAutoReconnect())

	// In UpdateClientConnState: keep the set in step with the resolver.
	added, removed, _ := set.Sync(addrs(bs[0], bs[1]))
	fmt.Println("sync A B:   added", names(added), "removed", names(removed))
	for _, sc := range added {
		sc.Connect()
	}
	got := []string{<-ready, <-ready}
	slices.Sort(got)
	fmt.Println("READY:", got)

	added, removed, _ = set.Sync(addrs(bs[1], bs[2], bs[2])) // duplicates count once
	fmt.Println("sync B C C: added", names(added), "removed", names(removed))

	// In Close: release everything the set holds.
	set.Close()
	fmt.Println("after Close:", len(m.Snapshot()) == 0 || m.Snapshot()[0].Shutdown)
	// Output:
	// sync A B:   added [A B] removed []
	// READY: [A B]
	// sync B C C: added [C] removed [A]
	// after Close: true
}

// A policy whose children are grpc's own policies gets leak-proof
// subchannels by building them on the manager's ClientConn. This one
// (sharedPickFirst, above) is grpc's pick_first with its SubConns owned by
// the manager, held under the name the ClientConn was given.
func ExampleManager_ClientConn() {
	b, err := testbackend.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	cc, err := dial(sharedPickFirst, b.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.GetMessage())
	for _, m := range subconn.Managers() {
		if m.Target() == cc.Target() {
			s := m.Snapshot()[0]
			fmt.Println(s.State, "held by", s.Holders)
		}
	}
	// Output:
	// hello
	// READY held by [pick_first]
}

// With Dialer installed, every socket has an owning subchannel: snapshots
// list the sockets each subchannel owns, and destroy waits for them.
func ExampleDialer() {
	b, err := testbackend.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	cc, err := grpc.NewClient("passthrough:///"+b.Addr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_pick_first":{}}]}`),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"}); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range subconn.Managers() {
		if m.Target() != cc.Target() {
			continue
		}
		for _, s := range m.Snapshot() {
			fmt.Println("sockets owned:", len(s.Sockets), "remote", s.Sockets[0].Remote == b.Addr())
		}
		fmt.Println("stats: opened", m.Stats().SocketsOpened)
	}
	n, _ := leaktest.SocketsTo(b.Addr())
	fmt.Println("sockets to the backend:", n)
	// Output:
	// sockets owned: 1 remote true
	// stats: opened 1
	// sockets to the backend: 1
}

// Under TLS, Credentials lets the dialer's sockets read the HTTP/2 frames
// above TLS: a GOAWAY from a server is traced as goaway, with its code,
// where the bare credentials leave it goaway_inferred.
func ExampleCredentials() {
	ca, err := testbackend.NewCA()
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := testbackend.Start(testbackend.TLS(ca), testbackend.Keepalive(keepalive.ServerParameters{MaxConnectionAge: 100 * time.Millisecond, MaxConnectionAgeGrace: 50 * time.Millisecond}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	cc, err := grpc.NewClient("passthrough:///"+b.Addr(),
		grpc.WithTransportCredentials(subconn.Credentials(ca.ClientCredentials())),
		grpc.WithContextDialer(subconn.Dialer(nil)),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"leakproof_pick_first":{}}]}`),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cc.Close()
	sub := trace.SubscribeMatch(64, trace.Match{Target: cc.Target()}, nil)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"}); err != nil {
		fmt.Println(err)
		return
	}
	for e := range sub.Events() {
		if e.Kind == trace.KindGoAway {
			fmt.Println(e.Kind, e.Cause)
			return
		}
	}
	// Output:
	// goaway goaway
}
