package benchmarks

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// closeWatch dials TCP and notes the moment each socket is closed: the
// precise end of a release, seen from inside the process (a socket table
// poll would add its own interval).
type closeWatch struct {
	mu     sync.Mutex
	closed []closedSocket
	notify chan struct{}
}

type closedSocket struct {
	addr string
	at   time.Time
}

func newCloseWatch() *closeWatch { return &closeWatch{notify: make(chan struct{}, 1)} }

var plainDialer net.Dialer

func (w *closeWatch) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := plainDialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, w: w, addr: addr}, nil
}

type watchedConn struct {
	net.Conn
	w    *closeWatch
	addr string
	once sync.Once
}

func (c *watchedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		at := time.Now()
		c.w.mu.Lock()
		c.w.closed = append(c.w.closed, closedSocket{c.addr, at})
		c.w.mu.Unlock()
		select {
		case c.w.notify <- struct{}{}:
		default:
		}
	})
	return err
}

// forget drops the closes seen so far.
func (w *closeWatch) forget() {
	w.mu.Lock()
	w.closed = nil
	w.mu.Unlock()
}

// waitClose waits up to timeout for a socket to addr to be closed and
// returns when it was.
func (w *closeWatch) waitClose(addr string, timeout time.Duration) (time.Time, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		w.mu.Lock()
		i := slices.IndexFunc(w.closed, func(c closedSocket) bool { return c.addr == addr })
		if i >= 0 {
			at := w.closed[i].at
			w.closed = slices.Delete(w.closed, i, i+1)
			w.mu.Unlock()
			return at, true
		}
		w.mu.Unlock()
		select {
		case <-w.notify:
		case <-t.C:
			return time.Time{}, false
		}
	}
}

// watchDialOption dials through w, under subconn.Dialer for leakproof.
func watchDialOption(w *closeWatch, leakproof bool) grpc.DialOption {
	if leakproof {
		return grpc.WithContextDialer(subconn.Dialer(w.dial))
	}
	return grpc.WithContextDialer(w.dial)
}

// releaseImpls are the channels of the release benchmarks: grpc-go's
// round_robin and leakproof's, each with the close-watching dialer (under
// subconn.Dialer for leakproof), leakproof's with a 200ms drain timeout.
var releaseImpls = []struct {
	impl, policy, cfg string
}{
	{"grpc", "round_robin", ""},
	{"leakproof", "leakproof_round_robin", `{"drainTimeout":"200ms"}`},
}

func reportLatencies(b *testing.B, ds []time.Duration) {
	p50, p99 := percentiles(ds)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}

// BenchmarkReleaseRemoved times, for grpc-go's round_robin and leakproof's
// over 3 real backends, how long after a resolver update that removes a
// backend (a READY one, no RPC in flight) its socket is closed. One op is
// one removal; the backend is put back and served an RPC before the next,
// outside the measured span. Reported: p50-ms and p99-ms.
func BenchmarkReleaseRemoved(b *testing.B) {
	addrs := startBackends(b, 3)
	for _, ri := range releaseImpls {
		b.Run(fmt.Sprintf("policy=round_robin/impl=%s", ri.impl), func(b *testing.B) {
			w := newCloseWatch()
			c := dial(b, e2e.ServiceConfig(ri.policy, ri.cfg), e2e.EndpointState(endpointsOf(addrs)...), watchDialOption(w, ri.impl == "leakproof"))
			c.served(b, addrs...)
			lat := make([]time.Duration, 0, b.N)
			for i := range b.N {
				k := addrs[i%len(addrs)]
				rest := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == k })
				w.forget()
				t0 := time.Now()
				c.r.UpdateState(e2e.EndpointState(endpointsOf(rest)...))
				at, ok := w.waitClose(k, e2e.LongTimeout)
				if !ok {
					b.Fatalf("socket to %s not closed %v after its removal", k, e2e.LongTimeout)
				}
				lat = append(lat, at.Sub(t0))
				c.r.UpdateState(e2e.EndpointState(endpointsOf(addrs)...))
				c.served(b, k)
			}
			reportLatencies(b, lat)
		})
	}
}

// openWindow is how long BenchmarkReleaseOpenStream waits for a socket with
// an open stream to close before it counts it as held open.
const openWindow = 2 * time.Second

// BenchmarkReleaseOpenStream is BenchmarkReleaseRemoved with a Hold stream
// open on the removed backend. grpc closes the socket only when the stream
// ends, which Hold never does: grpc's side is expected to stay open for the
// whole 2s window (open-after-2s 1; its latency then reads as the window),
// after which the benchmark cancels the stream. leakproof's side force-closes
// it at the drain timeout, set to 200ms.
func BenchmarkReleaseOpenStream(b *testing.B) {
	addrs := startBackends(b, 3)
	for _, ri := range releaseImpls {
		b.Run(fmt.Sprintf("policy=round_robin/impl=%s", ri.impl), func(b *testing.B) {
			w := newCloseWatch()
			c := dial(b, e2e.ServiceConfig(ri.policy, ri.cfg), e2e.EndpointState(endpointsOf(addrs)...), watchDialOption(w, ri.impl == "leakproof"))
			c.served(b, addrs...)
			lat := make([]time.Duration, 0, b.N)
			held := 0
			for i := range b.N {
				k := addrs[i%len(addrs)]
				cancel := holdOn(b, c, k)
				rest := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return a == k })
				w.forget()
				t0 := time.Now()
				c.r.UpdateState(e2e.EndpointState(endpointsOf(rest)...))
				at, ok := w.waitClose(k, openWindow)
				if ok {
					lat = append(lat, at.Sub(t0))
				} else {
					lat = append(lat, openWindow)
					held++
				}
				cancel()
				if !ok {
					if _, ok := w.waitClose(k, e2e.LongTimeout); !ok {
						b.Fatalf("socket to %s not closed after its stream ended", k)
					}
				}
				c.r.UpdateState(e2e.EndpointState(endpointsOf(addrs)...))
				c.served(b, k)
			}
			reportLatencies(b, lat)
			b.ReportMetric(float64(held)/float64(b.N), "open-after-2s")
		})
	}
}

// holdOn opens Hold streams until one is held by the backend at addr, ends
// the others, and returns the function that ends that one.
func holdOn(b *testing.B, c *channel, addr string) (cancel func()) {
	b.Helper()
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := c.echo.Hold(ctx, &echov1.HoldRequest{Label: "bench"}, grpc.WaitForReady(true))
		if err != nil {
			cancel()
			b.Fatalf("Hold: %v", err)
		}
		resp, err := s.Recv()
		if err != nil {
			cancel()
			b.Fatalf("Hold: %v", err)
		}
		if resp.GetBackend().GetAddress() == addr {
			return cancel
		}
		cancel()
	}
	b.Fatalf("no Hold stream landed on %s in 100 tries", addr)
	return nil
}

// BenchmarkReleaseShutdown times Shutdown of a READY subchannel with no RPC
// in flight until its socket is closed, on a real grpc.ClientConn: grpc's
// own SubConn.Shutdown against a leakproof manager's Release of the same
// subchannel (the direct policy). One op is one release; the subchannel is
// created and connected before it, outside the measured span.
func BenchmarkReleaseShutdown(b *testing.B) {
	addrs := startBackends(b, 1)
	for _, managed := range []bool{false, true} {
		impl := "grpc"
		if managed {
			impl = "leakproof"
		}
		b.Run(fmt.Sprintf("policy=direct/impl=%s", impl), func(b *testing.B) {
			w := newCloseWatch()
			c := dial(b, directConfigJSON(managed, nil), e2e.AddrState(), watchDialOption(w, managed))
			l := directOf(b, c)
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				ready := make(chan struct{})
				var once sync.Once
				sc, release, err := l.add(addrs[0], func(s connectivity.State) {
					if s == connectivity.Ready {
						once.Do(func() { close(ready) })
					}
				})
				if err != nil {
					b.Fatal(err)
				}
				sc.Connect()
				select {
				case <-ready:
				case <-time.After(e2e.LongTimeout):
					b.Fatalf("subchannel to %s never READY", addrs[0])
				}
				w.forget()
				t0 := time.Now()
				release()
				at, ok := w.waitClose(addrs[0], e2e.LongTimeout)
				if !ok {
					b.Fatalf("socket to %s not closed after Shutdown", addrs[0])
				}
				lat = append(lat, at.Sub(t0))
			}
			reportLatencies(b, lat)
		})
	}
}
