package subconn

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
)

// TestNoDialAfterShutdown: grpc may dial for a subchannel that was shut down
// right after Connect. The dialer must refuse, so that no socket appears
// after destroy; a dial already under way holds destroy back instead.
func TestNoDialAfterShutdown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(64))
	defer m.Close()

	// A dial under way when Shutdown comes holds destroy back.
	h, _ := m.Acquire(addr(l.Addr().String()), "holder")
	r := h.rec
	started := make(chan struct{})
	release := make(chan struct{})
	slow := func(ctx context.Context, a string) (net.Conn, error) {
		close(started)
		<-release
		return defaultDial(ctx, a)
	}
	done := make(chan error, 1)
	go func() {
		c, err := r.dial(context.Background(), l.Addr().String(), slow)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	<-started
	h.Release("removed")
	for _, e := range m.Trace() {
		if e.Kind == trace.KindDestroy {
			t.Fatal("destroy written while a dial was under way")
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the dial under way failed: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !hasKind(m.Trace(), trace.KindDestroy) {
		if time.Now().After(deadline) {
			t.Fatal("no destroy after the in-flight socket closed")
		}
		time.Sleep(time.Millisecond)
	}

	// A dial that starts after Shutdown is refused and leaves no trace.
	_, err = r.dial(context.Background(), l.Addr().String(), defaultDial)
	if err == nil || !strings.Contains(err.Error(), "shut down") {
		t.Fatalf("dial after Shutdown: err = %v, want a refusal", err)
	}
	ev := m.Trace()
	if last := ev[len(ev)-1]; last.Kind != trace.KindDestroy {
		t.Fatalf("last event after a refused dial is %v, want destroy", last)
	}
	if rep := trace.Check(ev); !rep.Clean() {
		t.Fatalf("trace problems: %v", rep.Problems)
	}
}

func hasKind(ev []trace.Event, k trace.Kind) bool {
	for _, e := range ev {
		if e.Kind == k {
			return true
		}
	}
	return false
}
