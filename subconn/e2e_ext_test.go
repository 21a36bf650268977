package subconn_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakproof/leakproof/balancer/pickfirst"
	"github.com/leakproof/leakproof/balancer/roundrobin"
	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/subconn"
	"github.com/leakproof/leakproof/testbackend"
	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// eventsWith returns the events of kind whose reason starts with prefix.
func eventsWith(ev []trace.Event, kind trace.Kind, prefix string) []trace.Event {
	var out []trace.Event
	for _, e := range ev {
		if e.Kind == kind && strings.HasPrefix(e.Reason, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// lossesWith returns the events of kind with cause, checking that each
// reason also starts with the cause, as its first word.
func lossesWith(t *testing.T, ev []trace.Event, kind trace.Kind, cause trace.Cause) []trace.Event {
	t.Helper()
	var out []trace.Event
	for _, e := range ev {
		if e.Kind == kind && e.Cause == cause {
			if !strings.HasPrefix(e.Reason, string(cause)+": ") {
				t.Errorf("event %v: cause %q but reason %q", e, e.Cause, e.Reason)
			}
			out = append(out, e)
		}
	}
	return out
}

func count(ev []trace.Event, kind trace.Kind) int {
	return len(eventsWith(ev, kind, ""))
}

func TestGoAwayIsTracedAndTheSameSubchannelReconnects(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      150 * time.Millisecond,
		MaxConnectionAgeGrace: 50 * time.Millisecond,
	}))
	c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, ""), e2e.AddrState(bs[0].Addr()), e2e.Options{})

	ev := c.Trace.WaitFor(t, "two GOAWAYs", func(ev []trace.Event) bool {
		if _, err := c.EchoOK(context.Background()); err != nil {
			t.Fatalf("RPC failed during GOAWAYs: %v", err)
		}
		return len(eventsWith(lossesWith(t, ev, trace.KindGoAway, trace.CauseGoAway), trace.KindGoAway, "goaway: server sent GOAWAY")) >= 2
	})
	if n := count(ev, trace.KindCreate); n != 1 {
		t.Fatalf("%d subchannels created for one backend across GOAWAYs, want 1 (reconnect the same one)\n%s", n, e2e.Format(ev))
	}
	if n := count(ev, trace.KindConnect); n < 2 {
		t.Fatalf("%d connects, want the first and one after each GOAWAY but the last", n)
	}
	if st := bs[0].Stats(); st.Accepted < 3 {
		t.Fatalf("backend accepted %d connections, want >= 3", st.Accepted)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}

func TestAbruptCloseAndStopAreTracedAsConnectionLoss(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(bs[0].Addr()), e2e.Options{})
	c.WaitServed(bs[0].Addr())

	if n := bs[0].ResetConns(); n != 1 {
		t.Fatalf("reset %d connections, want 1", n)
	}
	c.Trace.WaitFor(t, "conn_lost after RST", func(ev []trace.Event) bool {
		return len(lossesWith(t, ev, trace.KindConnLost, trace.CauseReset)) == 1
	})
	c.WaitServed(bs[0].Addr()) // round_robin reconnects by itself

	// A stopped server closes its sockets: a FIN, or an RST if unread data
	// was left in its receive buffer. Either way the peer ended it.
	bs[0].Stop()
	c.Trace.WaitFor(t, "conn_lost after Stop", func(ev []trace.Event) bool {
		return len(lossesWith(t, ev, trace.KindConnLost, trace.CauseEOF))+len(lossesWith(t, ev, trace.KindConnLost, trace.CauseReset)) == 2
	})
	if err := bs[0].Restart(); err != nil {
		t.Fatal(err)
	}
	c.WaitServed(bs[0].Addr())

	ev := c.Trace.Events()
	if n := count(ev, trace.KindCreate); n != 1 {
		t.Fatalf("%d subchannels created across RST and restart, want 1\n%s", n, e2e.Format(ev))
	}
	for _, e := range eventsWith(ev, trace.KindSocketClose, "") {
		if e.Socket == nil || e.Socket.Remote != bs[0].Addr() {
			t.Errorf("socket_close without the backend's address: %v", e)
		}
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
	e2e.WaitSockets(t, bs[0].Addr(), 0, e2e.LongTimeout)
}

// TestDrainTimeoutForceClosesAStreamThatNeverEnds removes a backend while a
// stream on it is open. grpc closes the socket only when the stream ends;
// the manager force-closes it after the drain timeout and then destroys the
// subchannel.
func TestDrainTimeoutForceClosesAStreamThatNeverEnds(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(pickfirst.Name, `{"drainTimeout":"400ms"}`), e2e.AddrState(a), e2e.Options{})
	c.WaitServed(a)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold, err := c.Echo.Hold(ctx, &echov1.HoldRequest{Label: "forever"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	c.R.UpdateState(e2e.AddrState(b))
	c.Trace.WaitFor(t, "shutdown of the removed backend", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindShutdown && e.Key == a {
				return true
			}
		}
		return false
	})
	if n := e2e.Sockets(t, a); n != 1 {
		t.Fatalf("%d sockets to the removed backend while its stream is open, want 1 (draining)", n)
	}
	if n := c.Trace.Count(trace.KindDestroy, a); n != 0 {
		t.Fatal("destroy written while a socket is still open")
	}
	info := subconn.Managers()
	var draining bool
	for _, m := range info {
		for _, s := range m.Snapshot() {
			if s.Key == a && s.Shutdown && len(s.Sockets) == 1 {
				draining = true
			}
		}
	}
	if !draining {
		t.Fatal("snapshot does not show the shut-down subchannel with its draining socket")
	}

	ev := c.Trace.WaitFor(t, "destroy after the drain timeout", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindDestroy, a) == 1
	})
	if took := time.Since(removed); took < 400*time.Millisecond {
		t.Fatalf("socket closed after %v, before the drain timeout", took)
	}
	if n := len(eventsWith(ev, trace.KindDrainTimeout, "1 socket(s)")); n != 1 {
		t.Fatalf("%d drain_timeout events, want 1\n%s", n, e2e.Format(ev))
	}
	if n := len(eventsWith(ev, trace.KindSocketClose, "force-closed")); n != 1 {
		t.Fatalf("%d force-closed sockets, want 1", n)
	}
	e2e.WaitSockets(t, a, 0, time.Second)
	if _, err := hold.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("held stream after force-close: %v, want UNAVAILABLE", err)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}

func TestConnectAndHandshakeFailuresAreTold(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	closed := refusingAddr(t)

	goodCA, err := testbackend.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testbackend.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	bs := e2e.StartBackends(t, 1, testbackend.TLS(goodCA))
	tlsAddr := bs[0].Addr()

	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.EndpointState([]string{closed}, []string{tlsAddr}),
		e2e.Options{DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(otherCA.ClientCredentials())}})
	ev := c.Trace.WaitFor(t, "TRANSIENT_FAILURE on both", func(ev []trace.Event) bool {
		return len(eventsWith(ev, trace.KindState, "from CONNECTING: connect failed")) > 0 &&
			len(eventsWith(ev, trace.KindState, "from CONNECTING: handshake failed")) > 0
	})
	for _, e := range eventsWith(ev, trace.KindState, "from CONNECTING: handshake failed") {
		if e.Key != tlsAddr {
			t.Errorf("handshake failure on %s, want only %s", e.Key, tlsAddr)
		}
	}
	for _, e := range eventsWith(ev, trace.KindState, "from CONNECTING: connect failed") {
		if e.Key != closed {
			t.Errorf("connect failure on %s, want only %s", e.Key, closed)
		}
	}
	// The rejected TLS sockets are closed.
	c.CC.Close()
	c.Trace.CheckClean(t)
	e2e.WaitSockets(t, tlsAddr, 0, e2e.LongTimeout)
}

// refusingAddr returns a 127.0.0.1 address that refuses connections: a
// socket bound to it but not listening keeps the port from every other test
// running in parallel for as long as this test runs.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// TestCleanRunHasADestroyForEveryCreate churns a round_robin channel over
// duplicate and overlapping endpoints and checks the whole trace.
func TestCleanRunHasADestroyForEveryCreate(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 3)
	a, b, cAddr := bs[0].Addr(), bs[1].Addr(), bs[2].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.EndpointState([]string{a}, []string{a, b}, []string{b, cAddr}), e2e.Options{})
	c.WaitServed(a, b)
	for i := range 10 {
		if i%2 == 0 {
			c.R.UpdateState(e2e.AddrState(cAddr))
		} else {
			c.R.UpdateState(e2e.EndpointState([]string{a}, []string{a, b}, []string{cAddr}))
		}
		if _, err := c.EchoOK(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c.CC.Close()
	rep := c.Trace.CheckClean(t)
	if rep.Subchannels < 3 {
		t.Fatalf("only %d subchannels in the trace", rep.Subchannels)
	}
	for _, addr := range []string{a, b, cAddr} {
		e2e.WaitSockets(t, addr, 0, e2e.LongTimeout)
	}
}

// TestAutoReconnectEndsWithTheHolderThatAskedForIt: WithAutoReconnect lasts
// as long as the reference that asked for it. While that holder holds the
// subchannel, the manager reconnects it after each GOAWAY; once it has
// released, the remaining holder (which did not ask) finds it IDLE.
func TestAutoReconnectEndsWithTheHolderThatAskedForIt(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 1, testbackend.Keepalive(keepalive.ServerParameters{
		MaxConnectionAge:      200 * time.Millisecond,
		MaxConnectionAgeGrace: 50 * time.Millisecond,
	}))
	a := bs[0].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(probePolicy, ""), e2e.AddrState(a), e2e.Options{})
	p := probeOf(t, c)

	var auto, plain stateWaiter
	ha, err := p.M.Acquire(resolver.Address{Addr: a}, "auto", subconn.WithAutoReconnect(), subconn.WithStateListener(auto.listen))
	if err != nil {
		t.Fatal(err)
	}
	hp, err := p.M.Acquire(resolver.Address{Addr: a}, "plain", subconn.WithStateListener(plain.listen))
	if err != nil {
		t.Fatal(err)
	}
	ha.Connect()
	// The first GOAWAY is followed by the manager's own Connect.
	ev := c.Trace.WaitFor(t, "an auto-reconnect after a GOAWAY", func(ev []trace.Event) bool {
		return len(eventsWith(ev, trace.KindConnect, "auto-reconnect")) > 0
	})
	if n := len(eventsWith(ev, trace.KindGoAway, "")); n < 1 {
		t.Fatalf("auto-reconnect without a GOAWAY before it\n%s", e2e.Format(ev))
	}
	plain.waitFor(t, connectivity.Ready, 2)

	if err := ha.Release("done"); err != nil {
		t.Fatal(err)
	}
	var released uint64
	for _, e := range c.Trace.Events() {
		if e.Kind == trace.KindUnref && e.Holder == "auto" {
			released = e.Seq
		}
	}
	after := func(ev []trace.Event, kind trace.Kind, prefix string) int {
		n := 0
		for _, e := range eventsWith(ev, kind, prefix) {
			if e.Seq > released {
				n++
			}
		}
		return n
	}
	// The subchannel was connecting or READY when the holder released (it
	// is never left IDLE while that holder holds it), so another GOAWAY
	// comes. The manager writes an auto-reconnect in the same critical
	// section as the goaway event: once the goaway is in the trace, so
	// would the reconnect be.
	ev = c.Trace.WaitFor(t, "a GOAWAY after the release", func(ev []trace.Event) bool {
		return after(ev, trace.KindGoAway, "") > 0
	})
	if n := after(ev, trace.KindConnect, "auto-reconnect"); n != 0 {
		t.Fatalf("%d auto-reconnect(s) after the holder that asked for it released\n%s", n, e2e.Format(ev))
	}
	var st string
	for _, info := range p.M.Snapshot() {
		if info.Key == hp.Key() {
			st = info.State
		}
	}
	if st != connectivity.Idle.String() {
		t.Fatalf("state after a GOAWAY with no auto-reconnect holder left: %q, want IDLE", st)
	}
	if err := hp.Release("done"); err != nil {
		t.Fatal(err)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}

// TestFailureReasonsCarryTheError: a TRANSIENT_FAILURE event says what
// failed (the dial or the handshake) and carries grpc's error with it.
func TestFailureReasonsCarryTheError(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	closed := refusingAddr(t)
	c := e2e.Dial(t, e2e.ServiceConfig(roundrobin.Name, ""), e2e.AddrState(closed), e2e.Options{})
	var failure trace.Event
	c.Trace.WaitFor(t, "TRANSIENT_FAILURE", func(ev []trace.Event) bool {
		for _, e := range ev {
			if e.Kind == trace.KindState && e.State == "TRANSIENT_FAILURE" {
				failure = e
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(failure.Reason, "from CONNECTING: connect failed: ") || !strings.Contains(failure.Reason, "connection refused") {
		t.Fatalf("reason %q, want the dial failure with grpc's error", failure.Reason)
	}
	c.CC.Close()
	c.Trace.CheckClean(t)
}
