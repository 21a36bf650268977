package trace_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	_ "github.com/leakproof/leakproof/balancer/pickfirst" // registers leakproof_pick_first
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Subscribe streams the events of every manager in the process; filter by
// the channel's target to follow one channel.
func ExampleSubscribe() {
	b, err := testbackend.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	target := "passthrough:///" + b.Addr()
	sub := trace.Subscribe(1024, func(e *trace.Event) bool { return e.Target == target })
	defer sub.Close()

	cc, err := dial("leakproof_pick_first", b.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"}); err != nil {
		fmt.Println(err)
	}
	cc.Close()
	for e := range sub.Events() {
		switch e.Kind {
		case trace.KindCreate, trace.KindRef, trace.KindUnref, trace.KindShutdown, trace.KindDestroy:
			fmt.Println(e.Kind, e.RefsBefore, "->", e.RefsAfter, e.Holder)
		}
		if e.Kind == trace.KindDestroy {
			break
		}
	}
	// Output:
	// create 0 -> 0 pick_first
	// ref 0 -> 1 pick_first
	// unref 1 -> 0 pick_first
	// shutdown 0 -> 0 pick_first
	// destroy 0 -> 0
}

// NewWriter records the trace as JSON lines (a file for CI, say);
// Read and Check check it afterwards, as `leakproof trace check`
// does.
func ExampleNewWriter() {
	b, err := testbackend.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	var file bytes.Buffer
	target := "passthrough:///" + b.Addr()
	tw := trace.NewWriter(&file, 0, func(e *trace.Event) bool { return e.Target == target })

	cc, err := dial("leakproof_pick_first", b.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hello"}); err != nil {
		fmt.Println(err)
	}
	cc.Close()
	for slices.ContainsFunc(subconn.Managers(), func(m *subconn.Manager) bool { return m.Target() == target }) {
		time.Sleep(10 * time.Millisecond) // a manager leaves the registry once all is destroyed
	}
	if err := tw.Close(); err != nil {
		fmt.Println(err)
	}

	events, err := trace.Read(&file)
	if err != nil {
		fmt.Println(err)
	}
	rep := trace.Check(events)
	fmt.Printf("first %s, last %s\n", events[0].Kind, events[len(events)-1].Kind)
	fmt.Printf("clean %v: %d subchannel, %d destroyed\n", rep.Clean(), rep.Subchannels, rep.Destroyed)
	// Output:
	// first manager_open, last destroy
	// clean true: 1 subchannel, 1 destroyed
}

// Check replays a trace and names what leaked. This one, written by
// hand, is the bug leakproof exists to prevent: a subchannel whose last
// reference was dropped and that was never shut down.
func ExampleCheck() {
	lines := `
{"seq":1,"manager":1,"event":"manager_open","target":"dns:///svc"}
{"seq":2,"manager":1,"subchannel":7,"key":"127.0.0.1:50051","event":"create","holder":"endpoint[0]"}
{"seq":3,"manager":1,"subchannel":7,"key":"127.0.0.1:50051","event":"ref","refs_before":0,"refs_after":1,"holder":"endpoint[0]"}
{"seq":4,"manager":1,"subchannel":7,"key":"127.0.0.1:50051","event":"ref","refs_before":1,"refs_after":2,"holder":"endpoint[1]"}
{"seq":5,"manager":1,"subchannel":7,"key":"127.0.0.1:50051","event":"unref","refs_before":2,"refs_after":1,"holder":"endpoint[1]"}
{"seq":6,"manager":1,"subchannel":7,"key":"127.0.0.1:50051","event":"unref","refs_before":1,"refs_after":0,"holder":"endpoint[0]"}
{"seq":7,"manager":1,"event":"manager_close","target":"dns:///svc"}
`
	events, err := trace.Read(strings.NewReader(lines))
	if err != nil {
		fmt.Println(err)
		return
	}
	rep := trace.Check(events)
	fmt.Println("clean:", rep.Clean())
	for _, p := range rep.Problems {
		fmt.Println(p)
	}
	// Output:
	// clean: false
	// leak: subchannel #7 127.0.0.1:50051 (manager 1): every reference released but Shutdown never called
}

// dial returns a connected channel to addr on policy, with the
// socket-tracking dialer.
func dial(policy, addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr,
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
