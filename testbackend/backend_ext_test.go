package testbackend_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
)

const (
	// defaultTestTimeout bounds anything that is expected to succeed.
	defaultTestTimeout = 10 * time.Second
	// shortTimeout bounds what is expected to fail or not to happen.
	shortTimeout = 300 * time.Millisecond
	// pollInterval is how often a test re-checks state that settles.
	pollInterval = 5 * time.Millisecond
)

// start starts a backend and closes it when the test ends.
func start(t *testing.T, opts ...testbackend.Option) *testbackend.Backend {
	t.Helper()
	b, err := testbackend.Start(opts...)
	if err != nil {
		t.Fatalf("testbackend.Start: %v", err)
	}
	t.Cleanup(b.Close)
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("backend listens on %q, want 127.0.0.1:port", b.Addr())
	}
	return b
}

// connCounter is a client-side stats.Handler that counts transports, so a
// test can see connections cycle from the client's side too.
type connCounter struct{ begun atomic.Int64 }

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.begun.Add(1)
	}
}

// dial makes a client for addr with fast reconnects and plaintext unless
// opts say otherwise, and closes it when the test ends.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, echov1.EchoServiceClient) {
	t.Helper()
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: shortTimeout,
		}),
	}
	cc, err := grpc.NewClient(addr, append(base, opts...)...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%q): %v", addr, err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, echov1.NewEchoServiceClient(cc)
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustEcho makes one Echo call that must succeed and come from b.
func mustEcho(t *testing.T, client echov1.EchoServiceClient, b *testbackend.Backend) {
	t.Helper()
	ctx := testContext(t, defaultTestTimeout)
	resp, err := client.Echo(ctx, &echov1.EchoRequest{Message: "ping"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("Echo: %v", err)
	}
	if resp.GetMessage() != "ping" || resp.GetBackend().GetName() != b.Name() || resp.GetBackend().GetAddress() != b.Addr() {
		t.Fatalf("Echo = %v, want message ping from %s at %s", resp, b.Name(), b.Addr())
	}
}

// echoAfterRestart is mustEcho for the first call after a hard restart: the
// client may not have seen its old connection die yet and send the call on
// it, which fails with UNAVAILABLE; one retry then goes to a new connection.
func echoAfterRestart(t *testing.T, client echov1.EchoServiceClient, b *testbackend.Backend) {
	t.Helper()
	ctx := testContext(t, defaultTestTimeout)
	_, err := client.Echo(ctx, &echov1.EchoRequest{Message: "ping"}, grpc.WaitForReady(true))
	if err != nil && status.Code(err) != codes.Unavailable {
		t.Fatalf("Echo after restart: %v", err)
	}
	mustEcho(t, client, b)
}

// waitFor polls cond until it holds or the default timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}

// openHold opens a Hold stream and reads its first response.
func openHold(t *testing.T, ctx context.Context, client echov1.EchoServiceClient, b *testbackend.Backend) echov1.EchoService_HoldClient {
	t.Helper()
	stream, err := client.Hold(ctx, &echov1.HoldRequest{Label: "held"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Hold: first Recv: %v", err)
	}
	if resp.GetLabel() != "held" || resp.GetBackend().GetName() != b.Name() {
		t.Fatalf("Hold: first response %v, want label held from %s", resp, b.Name())
	}
	return stream
}

// recvErr waits at most d for the next message or error of a Hold stream;
// done is false if neither came.
func recvErr(t *testing.T, stream echov1.EchoService_HoldClient, d time.Duration) (done bool, err error) {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		ch <- err
	}()
	select {
	case err := <-ch:
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

func TestEchoServicesReportTheBackend(t *testing.T) {
	b := start(t, testbackend.Name("alpha"))
	if b.Name() != "alpha" {
		t.Fatalf("Name() = %q, want alpha", b.Name())
	}
	cc, client := dial(t, b.Addr())
	ctx := testContext(t, defaultTestTimeout)

	mustEcho(t, client, b)

	stream, err := client.EchoStream(ctx)
	if err != nil {
		t.Fatalf("EchoStream: %v", err)
	}
	for i, msg := range []string{"a", "b", "c"} {
		if err := stream.Send(&echov1.EchoStreamRequest{Message: msg}); err != nil {
			t.Fatalf("EchoStream Send(%q): %v", msg, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("EchoStream Recv: %v", err)
		}
		if resp.GetMessage() != msg || resp.GetSequence() != uint64(i) || resp.GetBackend().GetAddress() != b.Addr() {
			t.Fatalf("EchoStream response %v, want %q #%d from %s", resp, msg, i, b.Addr())
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("EchoStream CloseSend: %v", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("EchoStream after CloseSend: Recv error %v, want io.EOF", err)
	}

	holdCtx, cancelHold := context.WithCancel(ctx)
	hold := openHold(t, holdCtx, client, b)
	if done, err := recvErr(t, hold, shortTimeout); done {
		t.Fatalf("Hold sent a second message or ended early: %v", err)
	}
	cancelHold()

	got := b.Stats()
	if want := (testbackend.Stats{Accepted: 1, Open: 1, RPCs: 3}); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}

	health := healthpb.NewHealthClient(cc)
	for _, serving := range []bool{false, true} {
		b.SetServing(serving)
		want := healthpb.HealthCheckResponse_NOT_SERVING
		if serving {
			want = healthpb.HealthCheckResponse_SERVING
		}
		for _, svc := range []string{"", echov1.EchoService_ServiceDesc.ServiceName} {
			resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatalf("health Check(%q): %v", svc, err)
			}
			if resp.GetStatus() != want {
				t.Fatalf("health Check(%q) after SetServing(%v) = %v, want %v", svc, serving, resp.GetStatus(), want)
			}
		}
	}
	if got := b.Stats().RPCs; got != 3 {
		t.Fatalf("Stats().RPCs = %d after health checks, want 3 (health checks are not counted)", got)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  testbackend.Option
	}{
		{"negative port", testbackend.Port(-1)},
		{"port too large", testbackend.Port(70000)},
		{"negative ResetAfter", testbackend.ResetAfter(-time.Second)},
		{"host beyond loopback", testbackend.Host(netip.MustParseAddr("10.0.0.1"))},
		{"IPv6 host", testbackend.Host(netip.IPv6Loopback())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := testbackend.Start(tc.opt); err == nil {
				b.Close()
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

func TestStartOnAGivenPort(t *testing.T) {
	probe, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()

	b := start(t, testbackend.Port(port))
	if want := probe.Addr().String(); b.Addr() != want {
		t.Fatalf("Addr() = %q, want %q", b.Addr(), want)
	}
	if b.Name() != b.Addr() {
		t.Fatalf("default Name() = %q, want the address %q", b.Name(), b.Addr())
	}
	_, client := dial(t, b.Addr())
	mustEcho(t, client, b)
}

// Backends behind one DNS name listen on one port at distinct loopback
// addresses.
func TestStartOnAnotherLoopbackAddress(t *testing.T) {
	b2, err := testbackend.Start(testbackend.Host(netip.MustParseAddr("127.0.0.2")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Close)
	_, port, _ := net.SplitHostPort(b2.Addr())
	if !strings.HasPrefix(b2.Addr(), "127.0.0.2:") {
		t.Fatalf("Addr() = %q, want 127.0.0.2:port", b2.Addr())
	}
	p, _ := strconv.Atoi(port)
	b3, err := testbackend.Start(testbackend.Host(netip.MustParseAddr("127.0.0.3")), testbackend.Port(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b3.Close)
	for _, b := range []*testbackend.Backend{b2, b3} {
		_, client := dial(t, b.Addr())
		mustEcho(t, client, b)
	}
	if err := b3.Restart(); err != nil {
		t.Fatal(err)
	}
	_, client := dial(t, b3.Addr())
	mustEcho(t, client, b3)
}

// echoDuring keeps calling Echo for d and fails the test if a call fails
// for good; a call that fails with UNAVAILABLE (the connection went away
// under it) is retried.
func echoDuring(t *testing.T, client echov1.EchoServiceClient, b *testbackend.Backend, d time.Duration) {
	t.Helper()
	const attempts = 3
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		var err error
		for range attempts {
			ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
			var resp *echov1.EchoResponse
			resp, err = client.Echo(ctx, &echov1.EchoRequest{Message: "storm"}, grpc.WaitForReady(true))
			cancel()
			if err == nil && resp.GetBackend().GetName() != b.Name() {
				t.Fatalf("Echo answered by %q, want %q", resp.GetBackend().GetName(), b.Name())
			}
			if status.Code(err) != codes.Unavailable {
				break
			}
		}
		if err != nil {
			t.Fatalf("Echo during GOAWAY storm: %v", err)
		}
	}
}

func TestMaxConnectionAgeSendsGoaway(t *testing.T) {
	b := start(t, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      100 * time.Millisecond,
		MaxConnectionAgeGrace: 100 * time.Millisecond,
	}))
	counter := &connCounter{}
	_, client := dial(t, b.Addr(), grpc.WithStatsHandler(counter))

	echoDuring(t, client, b, 700*time.Millisecond)

	// About seven connections in 700ms; ask for fewer to stay robust on a
	// loaded machine, but more than a single reconnect.
	if got := b.Stats().Accepted; got < 4 {
		t.Fatalf("server accepted %d connections in 700ms with MaxConnectionAge 100ms, want >= 4", got)
	}
	if got := counter.begun.Load(); got < 4 {
		t.Fatalf("client began %d transports in 700ms with MaxConnectionAge 100ms, want >= 4", got)
	}
}

func TestSetKeepaliveTogglesTheStorm(t *testing.T) {
	b := start(t)
	_, client := dial(t, b.Addr())

	echoDuring(t, client, b, shortTimeout)
	if got := b.Stats().Accepted; got != 1 {
		t.Fatalf("accepted %d connections without MaxConnectionAge, want 1", got)
	}

	if err := b.SetKeepalive(keepalive.ServerParameters{MaxConnectionAge: 100 * time.Millisecond, MaxConnectionAgeGrace: 100 * time.Millisecond}); err != nil {
		t.Fatalf("SetKeepalive(100ms): %v", err)
	}
	echoDuring(t, client, b, 700*time.Millisecond)
	// One reconnect comes from the restart itself; the storm adds the rest.
	if got := b.Stats().Accepted; got < 5 {
		t.Fatalf("accepted %d connections after 700ms of MaxConnectionAge 100ms, want >= 5", got)
	}

	if err := b.SetKeepalive(keepalive.ServerParameters{}); err != nil {
		t.Fatalf("SetKeepalive(off): %v", err)
	}
	echoAfterRestart(t, client, b)
	calm := b.Stats().Accepted
	echoDuring(t, client, b, 2*shortTimeout)
	if got := b.Stats().Accepted; got != calm {
		t.Fatalf("accepted %d connections after the storm ended, want %d (no more cycling)", got, calm)
	}
}

func TestResetConnsFailsAnInFlightStream(t *testing.T) {
	b := start(t)
	_, client := dial(t, b.Addr())
	hold := openHold(t, testContext(t, defaultTestTimeout), client, b)

	if n := b.ResetConns(); n != 1 {
		t.Fatalf("ResetConns() = %d, want 1", n)
	}
	done, err := recvErr(t, hold, defaultTestTimeout)
	if !done {
		t.Fatal("Hold stream still open after ResetConns")
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Hold after ResetConns: %v, want code Unavailable", err)
	}
	waitFor(t, "the reset connection to be forgotten", func() bool { return b.Stats().Open == 0 })

	// The backend itself is still serving: the client reconnects.
	mustEcho(t, client, b)
	if got := b.Stats(); got.Accepted != 2 || got.Open != 1 {
		t.Fatalf("Stats() = %+v after a reconnect, want Accepted 2, Open 1", got)
	}
}

func TestResetConnsSendsRST(t *testing.T) {
	// On a frozen backend the server never reads or writes, so a plain close
	// would reach the client as EOF; only a reset reads as ECONNRESET.
	b := start(t, testbackend.Frozen())
	raw, err := net.DialTimeout("tcp4", b.Addr(), defaultTestTimeout)
	if err != nil {
		t.Fatalf("TCP dial: %v", err)
	}
	defer raw.Close()
	waitFor(t, "the connection to be held", func() bool { return b.Stats().Held == 1 })

	if n := b.ResetConns(); n != 1 {
		t.Fatalf("ResetConns() = %d, want 1", n)
	}
	raw.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	if _, err := raw.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after ResetConns: %v, want ECONNRESET", err)
	}
	if got := b.Stats(); got.Open != 0 || got.Held != 0 || got.Accepted != 1 {
		t.Fatalf("Stats() = %+v after ResetConns, want nothing open, 1 accepted", got)
	}
}

func TestResetAfterResetsEveryConnection(t *testing.T) {
	const after = 150 * time.Millisecond
	b := start(t, testbackend.ResetAfter(after))
	_, client := dial(t, b.Addr())

	begin := time.Now()
	hold := openHold(t, testContext(t, defaultTestTimeout), client, b)
	done, err := recvErr(t, hold, defaultTestTimeout)
	if !done {
		t.Fatal("Hold stream still open, want it reset")
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Hold after ResetAfter(%v): %v, want code Unavailable", after, err)
	}
	if elapsed := time.Since(begin); elapsed < after {
		t.Fatalf("stream ended after %v, before the %v reset", elapsed, after)
	}
}

func TestStopAndRestartOnTheSamePort(t *testing.T) {
	b := start(t)
	addr := b.Addr()
	cc, client := dial(t, addr)
	mustEcho(t, client, b)

	b.Stop()
	b.Stop() // a no-op on a stopped backend
	ctx := testContext(t, shortTimeout)
	if _, err := client.Echo(ctx, &echov1.EchoRequest{Message: "down"}); err == nil {
		t.Fatal("Echo succeeded on a stopped backend")
	}
	if c, err := net.DialTimeout("tcp4", addr, shortTimeout); err == nil {
		c.Close()
		t.Fatalf("a TCP connection to %s succeeded while the backend was stopped", addr)
	}

	if err := b.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if b.Addr() != addr {
		t.Fatalf("Addr() after Restart = %q, want %q", b.Addr(), addr)
	}
	cc.Connect()
	mustEcho(t, client, b)
	if got := b.Stats().Accepted; got != 2 {
		t.Fatalf("Stats().Accepted = %d after one restart, want 2", got)
	}

	// Restart on a serving backend restarts it hard.
	if err := b.Restart(); err != nil {
		t.Fatalf("Restart while serving: %v", err)
	}
	echoAfterRestart(t, client, b)
	if got := b.Stats().Accepted; got != 3 {
		t.Fatalf("Stats().Accepted = %d after two restarts, want 3", got)
	}
}

func TestGracefulStopWaitsForStreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cancelHold context.CancelFunc, b *testbackend.Backend)
		want codes.Code // of the held stream
	}{
		{"client cancels", func(cancel context.CancelFunc, _ *testbackend.Backend) { cancel() }, codes.Canceled},
		{"Stop cuts it short", func(_ context.CancelFunc, b *testbackend.Backend) { b.Stop() }, codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := start(t)
			_, client := dial(t, b.Addr())
			holdCtx, cancelHold := context.WithCancel(testContext(t, defaultTestTimeout))
			defer cancelHold()
			hold := openHold(t, holdCtx, client, b)

			stopped := make(chan struct{})
			go func() {
				b.GracefulStop()
				close(stopped)
			}()
			select {
			case <-stopped:
				t.Fatal("GracefulStop returned while a Hold stream was open")
			case <-time.After(shortTimeout):
			}
			// Draining: the listener is closed, so no new connection.
			if c, err := net.DialTimeout("tcp4", b.Addr(), shortTimeout); err == nil {
				c.Close()
				t.Fatal("a new TCP connection succeeded during GracefulStop")
			}

			tc.end(cancelHold, b)
			select {
			case <-stopped:
			case <-time.After(defaultTestTimeout):
				t.Fatal("GracefulStop did not return after the stream ended")
			}
			done, err := recvErr(t, hold, defaultTestTimeout)
			if !done || status.Code(err) != tc.want {
				t.Fatalf("Hold ended with %v (done %v), want code %v", err, done, tc.want)
			}
			if err := b.Restart(); err != nil {
				t.Fatalf("Restart after GracefulStop: %v", err)
			}
			mustEcho(t, client, b)
		})
	}
}

func TestFrozenBackendNeverSpeaksHTTP2(t *testing.T) {
	b := start(t, testbackend.Frozen())

	// A raw TCP connection is accepted but never gets a byte: not even the
	// server's HTTP/2 SETTINGS.
	raw, err := net.DialTimeout("tcp4", b.Addr(), defaultTestTimeout)
	if err != nil {
		t.Fatalf("TCP dial to a frozen backend: %v", err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		t.Fatalf("writing the HTTP/2 preface: %v", err)
	}
	raw.SetReadDeadline(time.Now().Add(shortTimeout))
	buf := make([]byte, 64)
	if n, err := raw.Read(buf); !isTimeout(err) {
		t.Fatalf("frozen backend answered: read %d bytes %q, err %v; want a timeout", n, buf[:n], err)
	}
	waitFor(t, "the raw connection to be held", func() bool { return b.Stats().Held == 1 })

	cc, client := dial(t, b.Addr())
	ctx := testContext(t, 2*shortTimeout)
	_, err = client.Echo(ctx, &echov1.EchoRequest{Message: "frozen"}, grpc.WaitForReady(true))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Echo to a frozen backend: %v, want code DeadlineExceeded", err)
	}
	if st := cc.GetState(); st == connectivity.Ready {
		t.Fatal("client is READY to a frozen backend")
	}
	got := b.Stats()
	if got.Accepted < 2 || got.Held != got.Open || got.RPCs != 0 {
		t.Fatalf("Stats() = %+v, want >= 2 accepted, all open ones held, no RPCs", got)
	}

	// Stopping the backend closes the held connections. The server never
	// read our preface, so the kernel answers the close with a RST rather
	// than a FIN; either way the read ends at once.
	b.Stop()
	raw.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	if _, err := raw.Read(buf); err == nil || isTimeout(err) {
		t.Fatalf("held connection after Stop: read error %v, want EOF or a reset", err)
	}
	if got := b.Stats(); got.Open != 0 {
		t.Fatalf("Stats().Open = %d after Stop, want 0", got.Open)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestConnLimitHoldsConnectionsPastTheLimit(t *testing.T) {
	b := start(t, testbackend.ConnLimit(1))
	first, client1 := dial(t, b.Addr())
	mustEcho(t, client1, b)

	_, client2 := dial(t, b.Addr())
	ctx := testContext(t, 2*shortTimeout)
	if _, err := client2.Echo(ctx, &echov1.EchoRequest{Message: "over"}, grpc.WaitForReady(true)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Echo over the limit: %v, want code DeadlineExceeded", err)
	}
	if got := b.Stats(); got.Held < 1 || got.Open != got.Held+1 || got.RPCs != 1 {
		t.Fatalf("Stats() = %+v, want one served connection, the rest held, 1 RPC", got)
	}
	// The connection within the limit is unaffected.
	mustEcho(t, client1, b)

	// Closing the served connection frees its slot for a new one; held
	// connections stay held.
	first.Close()
	waitFor(t, "the served connection to close", func() bool { s := b.Stats(); return s.Open == s.Held })
	_, client3 := dial(t, b.Addr())
	mustEcho(t, client3, b)
}

func TestTLSHandshake(t *testing.T) {
	ca, err := testbackend.NewCA()
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	other, err := testbackend.NewCA()
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	b := start(t, testbackend.TLS(ca))

	t.Run("trusted CA", func(t *testing.T) {
		_, client := dial(t, b.Addr(), grpc.WithTransportCredentials(ca.ClientCredentials()))
		mustEcho(t, client, b)
	})
	// A resolver's target names a service, not 127.0.0.1: the certificate
	// is still verified for the address every backend listens on.
	t.Run("trusted CA, named target", func(t *testing.T) {
		r := manual.NewBuilderWithScheme("named")
		r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: b.Addr()}}})
		cc, err := grpc.NewClient("named:///some.service", grpc.WithResolvers(r), grpc.WithTransportCredentials(ca.ClientCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		mustEcho(t, echov1.NewEchoServiceClient(cc), b)
	})
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		want  string
	}{
		{"other CA", other.ClientCredentials(), "certificate signed by unknown authority"},
		{"plaintext", insecure.NewCredentials(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, client := dial(t, b.Addr(), grpc.WithTransportCredentials(tc.creds))
			ctx := testContext(t, defaultTestTimeout)
			_, err := client.Echo(ctx, &echov1.EchoRequest{Message: "tls"})
			if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Echo: %v, want code Unavailable mentioning %q", err, tc.want)
			}
		})
	}
	if got := b.Stats().RPCs; got != 2 {
		t.Fatalf("Stats().RPCs = %d, want 2 (only the trusted clients')", got)
	}
}

// TestServicesAreRegisteredAtEveryStart: a user's service is served beside
// echo, and again after a restart.
func TestServicesAreRegisteredAtEveryStart(t *testing.T) {
	var registered atomic.Int64
	b := start(t, testbackend.Services(func(s *grpc.Server) {
		registered.Add(1)
		testgrpc.RegisterTestServiceServer(s, &testgrpc.UnimplementedTestServiceServer{})
	}))
	cc, client := dial(t, b.Addr())
	call := func() {
		t.Helper()
		ctx := testContext(t, defaultTestTimeout)
		// The embedded Unimplemented server answers Unimplemented: the
		// service is registered (an unknown service's error says so). A
		// call on the connection the restart closed fails Unavailable.
		var err error
		for {
			_, err = testgrpc.NewTestServiceClient(cc).EmptyCall(ctx, &testgrpc.Empty{}, grpc.WaitForReady(true))
			if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
				break
			}
			time.Sleep(pollInterval)
		}
		if status.Code(err) != codes.Unimplemented || strings.Contains(err.Error(), "unknown service") {
			t.Fatalf("EmptyCall: %v, want the registered service's Unimplemented", err)
		}
		mustEcho(t, client, b)
	}
	call()
	b.Stop()
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	call()
	if n := registered.Load(); n != 2 {
		t.Errorf("registered %d times, want 2 (Start and Restart)", n)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	b, err := testbackend.Start(testbackend.ConnLimit(1), testbackend.ResetAfter(time.Hour))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cc1, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cc2, err := grpc.NewClient(b.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	// A stream in flight on a served connection, and a held connection.
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	hold := openHold(t, ctx, echov1.NewEchoServiceClient(cc1), b)
	cc2.Connect()
	waitFor(t, "a held connection", func() bool { return b.Stats().Held == 1 })

	b.Close()
	b.Close() // twice is fine
	if done, err := recvErr(t, hold, defaultTestTimeout); !done || status.Code(err) != codes.Unavailable {
		t.Fatalf("Hold after Close: %v (done %v), want code Unavailable", err, done)
	}
	if err := b.Restart(); !errors.Is(err, testbackend.ErrClosed) {
		t.Fatalf("Restart after Close: %v, want ErrClosed", err)
	}
	if err := b.SetKeepalive(keepalive.ServerParameters{}); !errors.Is(err, testbackend.ErrClosed) {
		t.Fatalf("SetKeepalive after Close: %v, want ErrClosed", err)
	}
	if got := b.Stats().Open; got != 0 {
		t.Fatalf("Stats().Open = %d after Close, want 0", got)
	}
	cc1.Close()
	cc2.Close()
	goleak.VerifyNone(t)
}

func TestRestartWhileDraining(t *testing.T) {
	b := start(t)
	_, client := dial(t, b.Addr())
	holdCtx, cancelHold := context.WithCancel(testContext(t, defaultTestTimeout))
	defer cancelHold()
	hold := openHold(t, holdCtx, client, b)

	stopped := make(chan struct{})
	go func() {
		b.GracefulStop()
		close(stopped)
	}()
	// The drain has begun once the listener is closed.
	waitFor(t, "GracefulStop to close the listener", func() bool {
		c, err := net.DialTimeout("tcp4", b.Addr(), shortTimeout)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if err := b.Restart(); err != nil {
		t.Fatalf("Restart during GracefulStop: %v", err)
	}
	_, fresh := dial(t, b.Addr())
	mustEcho(t, fresh, b)

	// The old connection is still draining beside the new server.
	if done, err := recvErr(t, hold, shortTimeout); done {
		t.Fatalf("Hold ended by a Restart during GracefulStop: %v", err)
	}
	// Probe connections from the wait above may still be closing.
	waitFor(t, "one draining and one new connection", func() bool { return b.Stats().Open == 2 })
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned while its Hold stream was open")
	default:
	}

	cancelHold()
	select {
	case <-stopped:
	case <-time.After(defaultTestTimeout):
		t.Fatal("GracefulStop did not return after the stream ended")
	}
	mustEcho(t, fresh, b)
}
