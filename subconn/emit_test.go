package subconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
)

// TestSubscribeBuffersWhatItWasAskedTo: a subscription holds buf events
// before it is dropped, at least one.
func TestSubscribeBuffersWhatItWasAskedTo(t *testing.T) {
	const target = "fake:///subscribe-buffer"
	only := func(e *trace.Event) bool { return e.Target == target }
	s := trace.Subscribe(2, only)
	defer s.Close()
	tiny := trace.Subscribe(0, only)
	defer tiny.Close()
	m := NewManager(newFakeCC(), WithTarget(target), WithTraceRing(0))
	m.Close() // manager_open and manager_close
	if s.Dropped() {
		t.Fatal("a subscription with room for 2 events was dropped after 2")
	}
	var got []trace.Kind
	batch, _ := s.Read(nil)
	for _, e := range batch {
		got = append(got, e.Kind)
	}
	if !slices.Equal(got, []trace.Kind{trace.KindManagerOpen, trace.KindManagerClose}) {
		t.Fatalf("received %v", got)
	}
	if !tiny.Dropped() {
		t.Fatal("a subscription asked for 0 events (so 1) was not dropped by the second")
	}
	if batch, ok := tiny.Read(nil); !ok || len(batch) != 1 || batch[0].Kind != trace.KindManagerOpen {
		t.Fatalf("the tiny subscription's one event: %v, %v", batch, ok)
	}
	select {
	case <-tiny.Done():
	default:
		t.Fatal("the dropped subscription has not ended")
	}
	if _, ok := tiny.Read(nil); ok {
		t.Fatal("the dropped subscription reports more to come")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// blockingWriter blocks every Write until unblocked.
type blockingWriter struct {
	unblock chan struct{}
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	<-w.unblock
	return w.buf.Write(b)
}

// TestTraceWriterReportsWriteErrorsAndDrops: Close says when the trace on
// disk is not the whole trace.
func TestTraceWriterReportsWriteErrorsAndDrops(t *testing.T) {
	const target = "fake:///trace-writer-errors"
	only := func(e *trace.Event) bool { return e.Target == target }

	tw := trace.NewWriter(failingWriter{}, 0, only)
	NewManager(newFakeCC(), WithTarget(target), WithTraceRing(0)).Close()
	if err := tw.Close(); err == nil || !strings.Contains(err.Error(), "trace: writing: disk full") {
		t.Fatalf("Close after a failed write = %v", err)
	}

	dropped := trace.DroppedSubscriptions()
	w := &blockingWriter{unblock: make(chan struct{})}
	tw = trace.NewWriter(w, 1, only)
	m := NewManager(newFakeCC(), WithTarget(target), WithTraceRing(0))
	for i := range 20 {
		h, err := m.Acquire(addr(fmt.Sprintf("10.0.0.1:%d", i+1)), "h")
		if err != nil {
			t.Fatal(err)
		}
		h.Release("done")
	}
	m.Close()
	close(w.unblock)
	if err := tw.Close(); !errors.Is(err, trace.ErrDropped) {
		t.Fatalf("Close after falling behind = %v, want trace.ErrDropped", err)
	}
	if trace.DroppedSubscriptions() <= dropped {
		t.Fatal("DroppedSubscriptions did not count the dropped writer")
	}
	// What was written before the drop is whole JSON lines.
	if _, err := trace.Read(&w.buf); err != nil {
		t.Fatalf("the partial trace does not read back: %v", err)
	}
}

// TestTraceWriterFlushesWhenIdle: a writer with nothing queued flushes, so a
// trace file is readable while the process runs.
func TestTraceWriterFlushesWhenIdle(t *testing.T) {
	const target = "fake:///trace-writer-flush"
	pr, pw := io.Pipe()
	tw := trace.NewWriter(pw, 0, func(e *trace.Event) bool { return e.Target == target })
	m := NewManager(newFakeCC(), WithTarget(target), WithTraceRing(0))
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		n, _ := pr.Read(b)
		line <- string(b[:n])
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, `"event":"manager_open"`) {
			t.Fatalf("first write %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the manager_open event was never flushed")
	}
	go io.Copy(io.Discard, pr)
	m.Close()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
}

// TestTracingOffAllocatesNothingPerStateChange: with no ring and no
// subscriber, a state change builds no event and no reason.
func TestTracingOffAllocatesNothingPerStateChange(t *testing.T) {
	if trace.Listening() {
		t.Fatal("a subscription from another test is still open")
	}
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	defer m.Close()
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release("done")
	sc := cc.sc(0)
	failed := balancer.SubConnState{ConnectivityState: connectivity.TransientFailure, ConnectionError: errors.New("refused")}
	allocs := testing.AllocsPerRun(100, func() {
		sc.push(connectivity.Connecting)
		sc.listener(failed)
		sc.push(connectivity.Idle)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per three state changes with tracing off, want 0", allocs)
	}
}

// TestSubscriptionFiltersApplyPerSubscriber: each subscription gets the
// events its own filter accepts; one without a filter gets every event.
func TestSubscriptionFiltersApplyPerSubscriber(t *testing.T) {
	const a, b = "fake:///filter-a", "fake:///filter-b"
	onlyA := trace.Subscribe(16, func(e *trace.Event) bool { return e.Target == a })
	defer onlyA.Close()
	all := trace.Subscribe(16, nil)
	defer all.Close()
	within(t, "publishing to a filtered and an unfiltered subscription", 2*time.Second, func() {
		NewManager(newFakeCC(), WithTarget(a), WithTraceRing(0)).Close()
		NewManager(newFakeCC(), WithTarget(b), WithTraceRing(0)).Close()
	})
	drain := func(s *trace.Subscription) []string {
		var out []string
		batch, _ := s.Read(nil)
		for _, e := range batch {
			out = append(out, e.Target+" "+string(e.Kind))
		}
		return out
	}
	if got, want := drain(onlyA), []string{a + " manager_open", a + " manager_close"}; !slices.Equal(got, want) {
		t.Fatalf("filtered subscription got %v, want %v", got, want)
	}
	if got, want := drain(all), []string{a + " manager_open", a + " manager_close", b + " manager_open", b + " manager_close"}; !slices.Equal(got, want) {
		t.Fatalf("unfiltered subscription got %v, want %v", got, want)
	}
}

func TestTraceWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	tw := trace.NewWriter(&buf, 0, func(e *trace.Event) bool { return e.Target == "fake:///roundtrip" })
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///roundtrip"), WithTraceRing(0))
	h, _ := m.Acquire(addr("10.0.0.1:1"), "one")
	h.Release("done")
	m.Close()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := trace.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 7 { // manager_open, create, ref, unref, shutdown, destroy, manager_close
		t.Fatalf("round trip gave %d events: %v", len(events), events)
	}
	if rep := trace.Check(events); !rep.Clean() || rep.Destroyed != 1 {
		t.Fatalf("trace.Check = %+v", rep)
	}
}
