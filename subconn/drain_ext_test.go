package subconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/testing/e2e"
	"github.com/leakproof/leakproof/leaktest"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/trace"
)

// TestZeroDrainTimeoutNeverForceCloses: a drain timeout of 0 means grpc's
// own behaviour, no bound: a removed backend's socket stays open while a
// stream on it lives, and closes when the stream ends.
func TestZeroDrainTimeoutNeverForceCloses(t *testing.T) {
	t.Cleanup(leaktest.Check(t))
	bs := e2e.StartBackends(t, 2)
	a, b := bs[0].Addr(), bs[1].Addr()
	c := e2e.Dial(t, e2e.ServiceConfig(probePolicy, `{"pickFirst":true,"drainTimeout":"0s"}`), e2e.AddrState(a), e2e.Options{})
	c.WaitServed(a)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hold, err := c.Echo.Hold(ctx, &echov1.HoldRequest{Label: "long"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Recv(); err != nil {
		t.Fatal(err)
	}
	c.R.UpdateState(e2e.AddrState(b))
	c.Trace.WaitFor(t, "shutdown of the removed backend", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindShutdown, a) == 1
	})
	// Long enough for any timer the manager might have started to fire.
	time.Sleep(300 * time.Millisecond)
	if n := e2e.Sockets(t, a); n != 1 {
		t.Fatalf("%d sockets to the removed backend with its stream open and no drain bound, want 1", n)
	}
	if n := c.Trace.Count(trace.KindDrainTimeout, ""); n != 0 {
		t.Fatalf("%d drain_timeout events with the drain timeout disabled\n%s", n, e2e.Format(c.Trace.Events()))
	}

	cancel() // the stream ends: grpc closes the socket, the manager destroys
	c.Trace.WaitFor(t, "destroy once the stream ended", func(ev []trace.Event) bool {
		return c.Trace.Count(trace.KindDestroy, a) == 1
	})
	e2e.WaitSockets(t, a, 0, e2e.LongTimeout)
	c.CC.Close()
	c.Trace.CheckClean(t)
}
