// Package e2e builds the real clients and backends that leakproof's
// end-to-end tests share: backends on 127.0.0.1, a ClientConn on a manual
// resolver with a chosen policy and the socket-tracking dialer, a recorder of
// the refcount trace of that one channel, and socket sampling.
package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// Timeouts for waits in tests: most conditions hold within milliseconds;
// the long timeout only bounds a hang.
const (
	ShortTimeout = 50 * time.Millisecond
	LongTimeout  = 10 * time.Second
)

// StartBackends starts n backends with opts, closed at the end of the test.
func StartBackends(t testing.TB, n int, opts ...testbackend.Option) []*testbackend.Backend {
	t.Helper()
	var bs []*testbackend.Backend
	for i := range n {
		b, err := testbackend.Start(append([]testbackend.Option{testbackend.Name(fmt.Sprintf("b%d", i))}, opts...)...)
		if err != nil {
			t.Fatalf("starting backend %d: %v", i, err)
		}
		t.Cleanup(b.Close)
		bs = append(bs, b)
	}
	return bs
}

// Addrs returns the backends' addresses.
func Addrs(bs []*testbackend.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr()
	}
	return out
}

// A Client is a ClientConn on a manual resolver.
type Client struct {
	CC     *grpc.ClientConn
	R      *manual.Resolver
	Echo   echov1.EchoServiceClient
	Target string
	Trace  *Recorder
	t      testing.TB
}

var schemes atomic.Uint64

// Options for Dial.
type Options struct {
	NoDialer    bool // do not install subconn.Dialer
	DialOptions []grpc.DialOption
}

// ServiceConfig returns a service config naming policy with cfg (a JSON
// object, or "" for {}).
func ServiceConfig(policy, cfg string) string {
	if cfg == "" {
		cfg = "{}"
	}
	return fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, policy, cfg)
}

// Dial returns a client using serviceConfig, with state as the resolver's
// initial state. Its trace is recorded from before the channel exists. It
// is closed at the end of the test (closing it earlier is fine).
func Dial(t testing.TB, serviceConfig string, state resolver.State, o Options) *Client {
	t.Helper()
	scheme := fmt.Sprintf("e2e%d", schemes.Add(1))
	r := manual.NewBuilderWithScheme(scheme)
	r.InitialState(state)
	target := scheme + ":///test"
	c := &Client{R: r, Target: target, t: t, Trace: Record(target)}
	opts := []grpc.DialOption{
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
	}
	if !o.NoDialer {
		opts = append(opts, grpc.WithContextDialer(subconn.Dialer(nil)))
	}
	cc, err := grpc.NewClient(target, append(opts, o.DialOptions...)...)
	if err != nil {
		c.Trace.Close()
		t.Fatalf("grpc.NewClient: %v", err)
	}
	c.CC = cc
	c.Echo = echov1.NewEchoServiceClient(cc)
	cc.Connect()
	t.Cleanup(func() {
		cc.Close()
		c.Trace.Close()
	})
	return c
}

// AddrState returns a resolver state of plain addresses.
func AddrState(addrs ...string) resolver.State {
	var s resolver.State
	for _, a := range addrs {
		s.Addresses = append(s.Addresses, resolver.Address{Addr: a})
	}
	return s
}

// EndpointState returns a resolver state of endpoints, each a list of
// addresses.
func EndpointState(endpoints ...[]string) resolver.State {
	var s resolver.State
	for _, ep := range endpoints {
		var e resolver.Endpoint
		for _, a := range ep {
			e.Addresses = append(e.Addresses, resolver.Address{Addr: a})
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

// EchoOK makes one unary RPC (waiting for the channel to be ready) and
// returns the backend that served it.
func (c *Client) EchoOK(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, LongTimeout)
	defer cancel()
	resp, err := c.Echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(true))
	if err != nil {
		return "", err
	}
	return resp.GetBackend().GetAddress(), nil
}

// WaitServed makes RPCs until every addr in want has served one. RPCs that
// fail are retried: one sent on a connection the server has just killed
// fails, as it does with any policy.
func (c *Client) WaitServed(want ...string) {
	c.t.Helper()
	left := map[string]bool{}
	for _, a := range want {
		left[a] = true
	}
	deadline := time.Now().Add(LongTimeout)
	var lastErr error
	for len(left) > 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("backends %v never served an RPC (last error: %v)", left, lastErr)
		}
		a, err := c.EchoOK(context.Background())
		if err != nil {
			lastErr = err
			time.Sleep(5 * time.Millisecond)
			continue
		}
		delete(left, a)
	}
}

// WaitUnavailable makes fail-fast RPCs until one fails with UNAVAILABLE and
// a message containing want (a picker update reaches RPCs asynchronously).
// Any other outcome fails the test.
func (c *Client) WaitUnavailable(want string) {
	c.t.Helper()
	deadline := time.Now().Add(LongTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), LongTimeout)
		_, err := c.Echo.Echo(ctx, &echov1.EchoRequest{})
		cancel()
		if status.Code(err) != codes.Unavailable {
			c.t.Fatalf("RPC: %v, want UNAVAILABLE", err)
		}
		if strings.Contains(err.Error(), want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("RPC error %q does not contain %q", err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A Recorder collects the refcount trace of one channel target.
type Recorder struct {
	sub    *trace.Subscription
	mu     sync.Mutex
	events []trace.Event
}

// Record starts recording the events of managers serving target.
func Record(target string) *Recorder {
	return &Recorder{sub: trace.Subscribe(1<<16, func(e *trace.Event) bool { return e.Target == target })}
}

// Events returns the events recorded so far.
func (r *Recorder) Events() []trace.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch, _ := r.sub.Read(nil)
	r.events = append(r.events, batch...)
	return append([]trace.Event(nil), r.events...)
}

// Count returns how many recorded events are of kind (for key, if not "").
func (r *Recorder) Count(kind trace.Kind, key string) int {
	n := 0
	for _, e := range r.Events() {
		if e.Kind == kind && (key == "" || e.Key == key) {
			n++
		}
	}
	return n
}

// WaitFor polls until cond holds for the recorded events.
func (r *Recorder) WaitFor(t testing.TB, what string, cond func([]trace.Event) bool) []trace.Event {
	t.Helper()
	deadline := time.Now().Add(LongTimeout)
	for {
		ev := r.Events()
		if cond(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; trace:\n%s", what, Format(ev))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Dropped reports whether the recorder fell behind.
func (r *Recorder) Dropped() bool { return r.sub.Dropped() }

// Close stops recording; recorded events stay readable.
func (r *Recorder) Close() {
	r.Events()
	r.sub.Close()
}

// Format renders events one per line.
func Format(events []trace.Event) string {
	s := ""
	for _, e := range events {
		s += e.String() + "\n"
	}
	return s
}

// CheckClean fails the test unless the recorded trace checks clean and every
// created subchannel was destroyed. Call it after the channel closed.
func (r *Recorder) CheckClean(t testing.TB) trace.Report {
	t.Helper()
	var ev []trace.Event
	deadline := time.Now().Add(LongTimeout)
	for {
		ev = r.Events()
		rep := trace.Check(ev)
		created := 0
		for _, e := range ev {
			if e.Kind == trace.KindCreate {
				created++
			}
		}
		if rep.Clean() && rep.Destroyed == created && rep.Live == 0 {
			if r.Dropped() {
				t.Fatal("trace recorder fell behind: the trace is incomplete")
			}
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace not clean: %d created, %d destroyed, %d live, problems %v\n%s", created, rep.Destroyed, rep.Live, rep.Problems, Format(ev))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sockets returns the number of sockets this process holds to addr.
func Sockets(t testing.TB, addr string) int {
	t.Helper()
	n, err := leaktest.SocketsTo(addr)
	if err != nil {
		t.Fatalf("SocketsTo(%s): %v", addr, err)
	}
	return n
}

// WaitSockets polls until the process holds want sockets to addr.
func WaitSockets(t testing.TB, addr string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := Sockets(t, addr)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets to %s after %v, want %d", n, addr, timeout, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// MaxSockets samples the sockets to each addr every few milliseconds for d
// and returns the maximum seen per address.
func MaxSockets(t testing.TB, d time.Duration, addrs ...string) map[string]int {
	t.Helper()
	max := map[string]int{}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, a := range addrs {
			if n := Sockets(t, a); n > max[a] {
				max[a] = n
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
	return max
}
