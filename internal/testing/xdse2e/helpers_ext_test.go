package xdse2e_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/leakproof/leakproof/balancer/pickfirst"  // registers leakproof_pick_first
	_ "github.com/leakproof/leakproof/balancer/roundrobin" // registers leakproof_round_robin
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/internal/xdsplane"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// heavy reports whether the long variants run (XDSE2E_HEAVY=1).
var heavy = os.Getenv("XDSE2E_HEAVY") != ""

// startServer starts a management server, closed at the end of the test.
func startServer(t *testing.T) *xdsplane.Server {
	t.Helper()
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	srv, err := xdsplane.Start(xdsplane.Options{Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(f, a...)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// publish publishes res and returns its version.
func publish(t *testing.T, srv *xdsplane.Server, res xdsplane.Resources) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	v, err := srv.Update(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitAcked waits until the client holds version v of typeURL.
func waitAcked(t *testing.T, srv *xdsplane.Server, typeURL, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.LongTimeout)
	defer cancel()
	if err := srv.WaitAcked(ctx, typeURL, v); err != nil {
		t.Fatal(err)
	}
}

// service returns the resources of target routed to the first cluster.
func service(t *testing.T, target string, clusters ...xdsplane.ClusterSpec) xdsplane.Resources {
	t.Helper()
	res, err := xdsplane.Service(target, clusters[0].Name, clusters...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// one returns a single locality "z1" at priority 0 listing addrs.
func one(addrs ...string) []xdsplane.Locality {
	return []xdsplane.Locality{{Name: "z1", Endpoints: addrs}}
}

// client is a channel on xds:///target through srv's resolver.
type client struct {
	CC     *grpc.ClientConn
	Echo   echov1.EchoServiceClient
	Target string
	Trace  *e2e.Recorder
	t      *testing.T
}

var channels atomic.Uint64

// dial opens a channel on xds:///target with the socket-tracking dialer
// (unless noDialer), recording its trace. It is closed at the end of the test.
func dial(t *testing.T, srv *xdsplane.Server, target string, noDialer bool, extra ...grpc.DialOption) *client {
	t.Helper()
	r, err := srv.Resolver()
	if err != nil {
		t.Fatal(err)
	}
	full := "xds:///" + target
	c := &client{Target: full, Trace: e2e.Record(full), t: t}
	opts := []grpc.DialOption{grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials())}
	if !noDialer {
		opts = append(opts, grpc.WithContextDialer(subconn.Dialer(nil)))
	}
	opts = append(opts, extra...)
	cc, err := grpc.NewClient(full, opts...)
	if err != nil {
		c.Trace.Close()
		t.Fatal(err)
	}
	c.CC, c.Echo = cc, echov1.NewEchoServiceClient(cc)
	t.Cleanup(func() { cc.Close(); c.Trace.Close() })
	return c
}

// echo makes one RPC and returns the backend that served it.
func (c *client) echo(ctx context.Context, waitForReady bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e2e.LongTimeout)
	defer cancel()
	resp, err := c.Echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.WaitForReady(waitForReady))
	if err != nil {
		return "", err
	}
	return resp.GetBackend().GetAddress(), nil
}

// waitServed makes RPCs until every backend in want served one.
func (c *client) waitServed(want ...string) {
	c.t.Helper()
	left := map[string]bool{}
	for _, a := range want {
		left[a] = true
	}
	deadline := time.Now().Add(e2e.LongTimeout)
	var lastErr error
	for len(left) > 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: backends %v never served an RPC (last error: %v)", c.Target, left, lastErr)
		}
		a, err := c.echo(context.Background(), true)
		if err != nil {
			lastErr = err
			time.Sleep(5 * time.Millisecond)
			continue
		}
		delete(left, a)
	}
}

// served makes n RPCs and counts them per backend; failures are returned.
func (c *client) served(n int) (map[string]int, []error) {
	got := map[string]int{}
	var errs []error
	for range n {
		a, err := c.echo(context.Background(), false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		got[a]++
	}
	return got, errs
}

// created returns the backend keys the channel's managers created a
// subchannel for, with how many times each.
func (c *client) created() map[string]int {
	out := map[string]int{}
	for _, e := range c.Trace.Events() {
		if e.Kind == trace.KindCreate {
			out[e.Key]++
		}
	}
	return out
}

// load runs RPCs in the background until stop is called and returns the
// number of RPCs made and failed.
func (c *client) load() (stop func() (ok, failed int, lastErr error)) {
	var (
		wg         sync.WaitGroup
		quit       = make(chan struct{})
		okN, failN atomic.Int64
		mu         sync.Mutex
		last       error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			default:
			}
			// Wait for ready, as a client with a retry policy would: an RPC
			// sent in the instant a picker changes is not a failure of the
			// policy.
			if _, err := c.echo(context.Background(), true); err != nil {
				failN.Add(1)
				mu.Lock()
				last = err
				mu.Unlock()
			} else {
				okN.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() (int, int, error) {
		close(quit)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return int(okN.Load()), int(failN.Load()), last
	}
}

// loadErrs is load that returns every error.
func (c *client) loadErrs() (stop func() (ok int, errs []error)) {
	var (
		wg   sync.WaitGroup
		quit = make(chan struct{})
		n    int
		errs []error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-quit:
				return
			default:
			}
			if _, err := c.echo(context.Background(), true); err != nil {
				errs = append(errs, err)
			} else {
				n++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() (int, []error) {
		close(quit)
		wg.Wait()
		return n, errs
	}
}

// maxSockets samples sockets to addrs for d and returns the maximum per
// backend.
func maxSockets(t *testing.T, d time.Duration, addrs ...string) map[string]int {
	t.Helper()
	return e2e.MaxSockets(t, d, addrs...)
}

func name(prefix string) string { return fmt.Sprintf("%s-%d", prefix, channels.Add(1)) }
