package subconn

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
)

// TestSocketOpenedAfterShutdownWithNoDrainBoundStaysOpen: with the drain
// timeout disabled (0), a socket whose dial finished after Shutdown is not
// force-closed; it is the owner's to close, and destroy waits for it.
func TestSocketOpenedAfterShutdownWithNoDrainBoundStaysOpen(t *testing.T) {
	target := holdingListener(t)
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(64), WithDrainTimeout(0))
	defer m.Close()
	h, err := m.Acquire(addr(target), "holder")
	if err != nil {
		t.Fatal(err)
	}
	c := dialAfterShutdown(t, h, target)
	time.Sleep(100 * time.Millisecond) // a zero-length timer would have fired
	if hasKind(m.Trace(), trace.KindDrainTimeout) || hasKind(m.Trace(), trace.KindDestroy) {
		t.Fatalf("socket force-closed or subchannel destroyed with no drain bound:\n%v", m.Trace())
	}
	if got := m.Stats().DrainTimeouts; got != 0 {
		t.Fatalf("DrainTimeouts = %d, want 0", got)
	}
	c.Close()
	waitFor(t, "destroy after the socket closed", func() bool { return hasKind(m.Trace(), trace.KindDestroy) })
	if rep := trace.Check(m.Trace()); !rep.Clean() {
		t.Fatalf("trace problems: %v", rep.Problems)
	}
}

// TestSocketOpenedAfterShutdownIsForceClosedOnce: a socket whose dial
// finished after Shutdown is force-closed when the drain timeout runs out,
// once, and the subchannel is destroyed.
func TestSocketOpenedAfterShutdownIsForceClosedOnce(t *testing.T) {
	target := holdingListener(t)
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(64), WithDrainTimeout(50*time.Millisecond))
	defer m.Close()
	h, err := m.Acquire(addr(target), "holder")
	if err != nil {
		t.Fatal(err)
	}
	c := dialAfterShutdown(t, h, target)
	defer c.Close()
	waitFor(t, "destroy after the drain timeout", func() bool { return hasKind(m.Trace(), trace.KindDestroy) })
	ev := m.Trace()
	var open, forced, drains int
	for _, e := range ev {
		switch {
		case e.Kind == trace.KindSocketOpen && e.Reason == "opened after Shutdown (dial was in flight)":
			open++
		case e.Kind == trace.KindSocketClose && e.Reason == "force-closed after the drain timeout":
			forced++
		case e.Kind == trace.KindDrainTimeout:
			drains++
		}
	}
	if open != 1 || forced != 1 || drains != 1 {
		t.Fatalf("socket_open after Shutdown %d, force-closed %d, drain_timeout %d; want 1 each\n%v", open, forced, drains, ev)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on the force-closed socket: %v, want net.ErrClosed", err)
	}
	time.Sleep(100 * time.Millisecond) // no second timer fires
	if got := m.Stats().DrainTimeouts; got != 1 {
		t.Fatalf("DrainTimeouts = %d, want 1", got)
	}
	if rep := trace.Check(m.Trace()); !rep.Clean() {
		t.Fatalf("trace problems: %v", rep.Problems)
	}
}

// TestOneDrainTimeoutPerSubchannel: a subchannel shut down with two dials
// in flight has one drain timeout, however its sockets arrive: the first
// opens while the timer runs and is force-closed with it, the second opens
// after it expired and is closed at once.
func TestOneDrainTimeoutPerSubchannel(t *testing.T) {
	target := holdingListener(t)
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(64), WithDrainTimeout(300*time.Millisecond))
	defer m.Close()
	h, err := m.Acquire(addr(target), "holder")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   net.Conn
		err error
	}
	var unblock [2]chan struct{}
	var done [2]chan result
	for i := range 2 {
		started := make(chan struct{})
		unblock[i], done[i] = make(chan struct{}), make(chan result, 1)
		go func() {
			c, err := h.rec.dial(context.Background(), target, func(ctx context.Context, a string) (net.Conn, error) {
				close(started)
				<-unblock[i]
				return defaultDial(ctx, a)
			})
			done[i] <- result{c, err}
		}()
		<-started
	}
	h.Release("removed with two dials in flight") // the drain timer starts
	time.Sleep(10 * time.Millisecond)
	close(unblock[0])
	first := <-done[0]
	if first.err != nil {
		t.Fatalf("the dial that finished while the timer ran: %v", first.err)
	}
	defer first.c.Close()
	time.Sleep(700 * time.Millisecond) // the timer has expired, and any second one too
	close(unblock[1])
	if second := <-done[1]; second.err == nil || !strings.Contains(second.err.Error(), "shut down while dialing") {
		t.Fatalf("the dial that finished after the drain timeout: %v, want a refusal", second.err)
	}
	waitFor(t, "destroy", func() bool { return hasKind(m.Trace(), trace.KindDestroy) })
	drains := 0
	for _, e := range m.Trace() {
		if e.Kind == trace.KindDrainTimeout {
			drains++
		}
	}
	if got := m.Stats().DrainTimeouts; got != 1 || drains != 1 {
		t.Fatalf("DrainTimeouts = %d and %d drain_timeout events, want 1 each\n%v", got, drains, m.Trace())
	}
	if rep := trace.Check(m.Trace()); !rep.Clean() {
		t.Fatalf("trace problems: %v", rep.Problems)
	}
}
