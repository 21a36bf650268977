package subconn

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// TestAcquireAfterAFailedNewSubConnCreatesAgain: a NewSubConn that fails
// must leave no trace of the key behind, or the next Acquire of that key
// waits forever for a creation that will never finish. grpc refuses
// NewSubConn only once its balancer is closing, for good; the fake refuses
// on demand.
func TestAcquireAfterAFailedNewSubConnCreatesAgain(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(64))
	defer m.Close()
	const a = "10.0.0.7:1"
	cc.mu.Lock()
	cc.newErr[a] = errors.New("balancer closing")
	cc.mu.Unlock()
	if _, err := m.Acquire(addr(a), "first"); err == nil {
		t.Fatal("Acquire succeeded although NewSubConn failed")
	}
	cc.mu.Lock()
	delete(cc.newErr, a)
	cc.mu.Unlock()

	type result struct {
		h   *SubConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, err := m.Acquire(addr(a), "second")
		done <- result{h, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Acquire after a failed NewSubConn: %v", r.err)
		}
		if n := cc.newSubConnCalls(); n != 1 {
			t.Fatalf("%d SubConns created, want 1", n)
		}
		r.h.Release("done")
	case <-time.After(2 * time.Second):
		m.mu.Lock()
		m.closed = true // let Close leave the stuck Acquire waiting
		m.mu.Unlock()
		t.Fatal("Acquire after a failed NewSubConn is stuck: the failed record is still in the live map")
	}
	cc.checkViolations(t)
}

// TestSecondShutdownIsLoggedAndIgnored: balancer.SubConn's Shutdown returns
// nothing, so a second one says so in the log, and a first one does not.
func TestSecondShutdownIsLoggedAndIgnored(t *testing.T) {
	log := captureLog(t)
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	h.Shutdown()
	if got := log.take(); len(got) != 0 {
		t.Fatalf("the first Shutdown logged %q", got)
	}
	h.Shutdown()
	if got := log.take(); len(got) != 1 || !strings.Contains(got[0], "already released") {
		t.Fatalf("the second Shutdown logged %q, want one warning", got)
	}
	if n := cc.sc(0).shutdowns.Load(); n != 1 {
		t.Fatalf("%d Shutdowns reached grpc, want 1", n)
	}
}

// TestUpdateAddressesToAnotherKeyIsRefusedAloud: a shared subchannel keeps
// its key. UpdateAddresses to the same key does nothing; to anything else
// it does nothing either, but says so in the log, where the mistake shows.
func TestUpdateAddressesToAnotherKeyIsRefusedAloud(t *testing.T) {
	log := captureLog(t)

	m := NewManager(newFakeCC())
	defer m.Close()
	a := resolver.Address{Addr: "10.0.0.1:1", ServerName: "sn", Attributes: attributes.New("zone", "a")}
	h, err := m.Acquire(a, "h")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release("done")

	same := a
	same.BalancerAttributes = attributes.New("weight", 2) // not part of the key
	h.UpdateAddresses([]resolver.Address{same})
	if got := log.take(); len(got) != 0 {
		t.Fatalf("UpdateAddresses to the same key logged %q", got)
	}
	otherAddr, otherName, otherAttrs := a, a, a
	otherAddr.Addr = "10.0.0.2:1"
	otherName.ServerName = "other"
	otherAttrs.Attributes = attributes.New("zone", "b")
	for _, addrs := range [][]resolver.Address{{otherAddr}, {otherName}, {otherAttrs}, {a, a}, nil} {
		h.UpdateAddresses(addrs)
		if got := log.take(); len(got) != 1 || !strings.Contains(got[0], "ignored: release it and acquire the new address") {
			t.Errorf("UpdateAddresses(%v) logged %q, want one error", addrs, got)
		}
	}
	if h.rec.addr != a.Addr || h.rec.key() != keyString(a) {
		t.Fatalf("the handle's address changed: %v", h.rec.addr)
	}
}

// TestAcquireOfAHeldOrReleasedKeyDoesNotWait: Acquire waits only while
// another goroutine creates or shuts down the key's subchannel: a second
// holder of a live one, and the first after the last release, get theirs
// at once.
func TestAcquireOfAHeldOrReleasedKeyDoesNotWait(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	var a, b, c *SubConn
	within(t, "the first Acquire", 2*time.Second, func() { a, _ = m.Acquire(addr("10.0.0.1:1"), "a") })
	within(t, "an Acquire of a held key", 2*time.Second, func() { b, _ = m.Acquire(addr("10.0.0.1:1"), "b") })
	if a == nil || b == nil || a.rec.id != b.rec.id {
		t.Fatalf("two holders of one key: %v, %v", a, b)
	}
	a.Release("done")
	b.Release("done")
	within(t, "an Acquire after the last release", 2*time.Second, func() { c, _ = m.Acquire(addr("10.0.0.1:1"), "c") })
	if c == nil || c.rec.id == a.rec.id || cc.newSubConnCalls() != 2 {
		t.Fatalf("after the last release: %v (NewSubConn called %d times), want a new subchannel", c, cc.newSubConnCalls())
	}
	c.Release("done")
	cc.checkViolations(t)
}
