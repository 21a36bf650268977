package subconn

// Tests that close gaps mutation testing (scripts/mutation.sh) found, for
// what the package's black-box tests cannot reach: the trace checker's
// bookkeeping, the event ring and hub, and manager paths that need grpc to
// fail (NewSubConn refusing) or a dial to finish at an exact moment. Those
// use fakeCC in place of grpc's ClientConn, and real sockets on 127.0.0.1.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leakproof/leakproof/trace"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
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

// holdingListener accepts connections on 127.0.0.1 and keeps them open
// until the test ends.
func holdingListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// dialAfterShutdown releases h while a dial for it is under way, then lets
// the dial finish, and returns the socket the dialer handed out. grpc's own
// addrConn closes a transport that connects after Shutdown at once, so this
// calls the record's dial directly to keep the socket open.
func dialAfterShutdown(t *testing.T, h *SubConn, target string) net.Conn {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	slow := func(ctx context.Context, a string) (net.Conn, error) {
		close(started)
		<-unblock
		return defaultDial(ctx, a)
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := h.rec.dial(context.Background(), target, slow)
		done <- result{c, err}
	}()
	<-started
	if err := h.Release("removed while dialing"); err != nil {
		t.Fatal(err)
	}
	close(unblock)
	r := <-done
	if r.err != nil {
		t.Fatalf("the dial under way at Shutdown failed: %v", r.err)
	}
	return r.c
}

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

// TestSocketRefsNameBothEnds: socket events carry the socket's local and
// remote addresses, which is how a leaked socket is found in /proc.
func TestSocketRefsNameBothEnds(t *testing.T) {
	target := holdingListener(t)
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(64))
	defer m.Close()
	h, err := m.Acquire(addr(target), "holder")
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.rec.dial(context.Background(), target, defaultDial)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	h.Release("done")
	var refs []*trace.SocketRef
	for _, e := range m.Trace() {
		if e.Socket != nil {
			refs = append(refs, e.Socket)
		}
	}
	if len(refs) != 2 {
		t.Fatalf("%d socket events, want open and close", len(refs))
	}
	for _, r := range refs {
		if r.Local != c.LocalAddr().String() || r.Remote != target || r.ID == 0 {
			t.Errorf("socket ref %+v, want local %s remote %s", r, c.LocalAddr(), target)
		}
	}
	if s := m.Snapshot(); len(s) != 0 {
		t.Fatalf("subchannels left: %+v", s)
	}
}

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
	if got := []trace.Kind{(<-s.C).Kind, (<-s.C).Kind}; !slices.Equal(got, []trace.Kind{trace.KindManagerOpen, trace.KindManagerClose}) {
		t.Fatalf("received %v", got)
	}
	if !tiny.Dropped() {
		t.Fatal("a subscription asked for 0 events (so 1) was not dropped by the second")
	}
	if e, ok := <-tiny.C; !ok || e.Kind != trace.KindManagerOpen {
		t.Fatalf("the tiny subscription's one event: %v, %v", e, ok)
	}
	waitFor(t, "the dropped subscription's channel to close", func() bool {
		select {
		case _, ok := <-tiny.C:
			return !ok
		default:
			return false
		}
	})
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

// TestManagersAreListedByIDAndClosedIsTold: the registry lists managers in
// id order, and keeps a closed manager only while it has subchannels.
func TestManagersAreListedByIDAndClosedIsTold(t *testing.T) {
	var ms []*Manager
	for range 5 {
		ms = append(ms, NewManager(newFakeCC()))
	}
	listed := Managers()
	if !slices.IsSortedFunc(listed, func(a, b *Manager) int { return cmp.Compare(a.ID(), b.ID()) }) {
		t.Fatal("Managers() not in id order")
	}
	var ids []uint64
	for _, m := range listed {
		ids = append(ids, m.ID())
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Fatalf("Managers() ids %v not strictly increasing", ids)
		}
	}
	for _, m := range ms {
		if !slices.Contains(ids, m.ID()) {
			t.Fatalf("manager %d missing from Managers()", m.ID())
		}
	}

	m := ms[0]
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	if m.isClosed() {
		t.Fatal("Closed() before Close")
	}
	for _, m := range ms {
		m.Close()
	}
	if !m.isClosed() {
		t.Fatal("Closed() false after Close")
	}
	if h.Release("late") == nil {
		t.Fatal("release after Close succeeded")
	}
	for _, x := range Managers() {
		for _, m := range ms {
			if x == m {
				t.Fatalf("closed manager %d with nothing left still listed", m.ID())
			}
		}
	}
}

// TestDefaultDialUnixAddresses: the dialer's default base dials
// "unix:path" and "unix://path" as Unix sockets, as grpc does.
func TestDefaultDialUnixAddresses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", path)
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
			c.Close()
		}
	}()
	for _, a := range []string{"unix:" + path, "unix://" + path} {
		c, err := defaultDial(context.Background(), a)
		if err != nil {
			t.Fatalf("defaultDial(%q): %v", a, err)
		}
		if c.RemoteAddr().Network() != "unix" {
			t.Errorf("defaultDial(%q) dialed %s", a, c.RemoteAddr().Network())
		}
		c.Close()
	}
	if _, err := defaultDial(context.Background(), "unix://"+path+".missing"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("dial of a missing socket file: %v, want ENOENT", err)
	}
}

// trackedPipe returns a trackedConn owned by a fresh subchannel around one
// end of a pipe.
func trackedPipe(t *testing.T) (*trackedConn, net.Conn) {
	t.Helper()
	m := NewManager(newFakeCC(), WithTraceRing(0))
	t.Cleanup(func() { m.Close() })
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Release("done") })
	a, b := net.Pipe()
	t.Cleanup(func() { b.Close() })
	return newTrackedConn(a, h.rec), b
}

// TestLossAndCloseCausesForEveryError: how a socket ended, from the first
// I/O error that says so. Resets and FINs from real peers are in the e2e
// tests; here every class, including those no loopback peer produces on
// demand (another read error, a GOAWAY hidden by TLS).
func TestLossAndCloseCausesForEveryError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		errs      []error
		goaway    bool
		closed    bool
		wantKind  trace.Kind
		wantLoss  string
		wantClose string
	}{
		{"reset", []error{syscall.ECONNRESET, io.EOF}, false, false, trace.KindConnLost, string(trace.CauseReset) + ": connection reset by peer (RST)", "reset by peer (RST)"},
		{"broken pipe", []error{fmt.Errorf("write: %w", syscall.EPIPE)}, false, false, trace.KindConnLost, string(trace.CauseReset) + ": connection reset by peer (RST)", "reset by peer (RST)"},
		{"eof", []error{io.EOF, syscall.ECONNRESET}, false, false, trace.KindConnLost, string(trace.CauseEOF) + ": socket closed by peer (EOF)", "closed by peer (EOF)"},
		{"other", []error{errors.New("tls: bad record MAC")}, false, false, trace.KindConnLost, string(trace.CauseReadErr) + ": tls: bad record MAC", "closed after read error: tls: bad record MAC"},
		{"client closing", []error{net.ErrClosed, os.ErrDeadlineExceeded}, false, true, trace.KindConnLost, string(trace.CauseLocal) + ": socket closed by the client (keepalive timeout or transport error)", "closed by client"},
		{"draining under TLS", nil, false, false, trace.KindGoAway, string(trace.CauseGoAwayInferred) + ": transport draining with its socket still open (GOAWAY; frames not visible under TLS)", "closed by client"},
		{"goaway", []error{io.EOF}, true, false, trace.KindGoAway, string(trace.CauseGoAway) + ": server sent GOAWAY (code ENHANCE_YOUR_CALM)", "closed after GOAWAY (code ENHANCE_YOUR_CALM)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := trackedPipe(t)
			if tc.goaway {
				c.goawayCd.Store(11)
				c.goaway.Store(true)
			}
			for _, err := range tc.errs {
				c.noteIOError(err)
			}
			if tc.closed {
				c.closed.Store(true)
			}
			l := c.lossCause()
			if l.kind != tc.wantKind || l.reason() != tc.wantLoss {
				t.Errorf("lossCause() = %s, %q; want %s, %q", l.kind, l.reason(), tc.wantKind, tc.wantLoss)
			}
			if got := c.closeReason(); got != tc.wantClose {
				t.Errorf("closeReason() = %q, want %q", got, tc.wantClose)
			}
			c.Close()
		})
	}
}

// TestErrorsAfterCloseAreTheClients: once the client has closed a socket,
// the errors its reader then sees are not the peer's doing.
func TestErrorsAfterCloseAreTheClients(t *testing.T) {
	c, _ := trackedPipe(t)
	c.Close()
	c.noteIOError(syscall.ECONNRESET)
	if got := c.closeReason(); got != "closed by client" {
		t.Fatalf("closeReason after a reset seen after Close = %q", got)
	}
	if c.forceClose(); c.closeReason() != "force-closed after the drain timeout" {
		t.Fatalf("closeReason after forceClose = %q", c.closeReason())
	}
}

// TestTrackedConnReadsAndWritesThrough: the wrapper passes bytes through
// unchanged and classifies the error that ends them.
func TestTrackedConnReadsAndWritesThrough(t *testing.T) {
	c, peer := trackedPipe(t)
	go func() {
		b := make([]byte, 5)
		io.ReadFull(peer, b)
		peer.Write(b)
		peer.Close()
	}()
	if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
		t.Fatalf("Read = %q, %v", b, err)
	}
	if _, err := c.Read(b); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want EOF", err)
	}
	if _, err := c.Write(b); err == nil {
		t.Fatal("Write after the peer closed succeeded")
	}
	if l := c.lossCause(); l.kind != trace.KindConnLost || l.cause != trace.CauseEOF {
		t.Fatalf("lossCause = %s, %q; want the peer's EOF", l.kind, l.reason())
	}
	if _, err := c.SyscallConn(); err == nil {
		t.Fatal("SyscallConn on a pipe: want an error, a pipe has no socket")
	}
	c.Close()
}

// TestSyscallConnReachesTheSocket: grpc reads socket options through
// SyscallConn for channelz; the wrapper must expose the real socket.
func TestSyscallConnReachesTheSocket(t *testing.T) {
	target := holdingListener(t)
	m := NewManager(newFakeCC(), WithTraceRing(0))
	defer m.Close()
	h, err := m.Acquire(addr(target), "h")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release("done")
	c, err := h.rec.dial(context.Background(), target, defaultDial)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*trackedConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var typ int
	var serr error
	if err := raw.Control(func(fd uintptr) { typ, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE) }); err != nil || serr != nil {
		t.Fatalf("Control: %v, %v", err, serr)
	}
	if typ != syscall.SOCK_STREAM {
		t.Fatalf("SO_TYPE = %d, want SOCK_STREAM", typ)
	}
}

func TestH2SnifferShortGoAwayAndUnknownCodes(t *testing.T) {
	var s h2Sniffer
	stream := append(h2frame(h2FrameSettings, nil), h2frame(h2FrameGoAway, []byte{0, 0, 0})...)
	if code, ok := s.feed(stream); !ok || code != 0 {
		t.Fatalf("short GOAWAY: code %d, seen %v; want 0, true", code, ok)
	}
	if got := h2ErrCode(0xd); got != "HTTP_1_1_REQUIRED" {
		t.Errorf("h2ErrCode(0xd) = %q", got)
	}
	if got := h2ErrCode(0xe); got != "0xe" {
		t.Errorf("h2ErrCode(0xe) = %q, want 0xe", got)
	}
}

// TestH2SnifferReadsTheCodeOfAnEightByteGoAway: a GOAWAY without debug data
// has exactly the 8 bytes of last stream id and error code.
func TestH2SnifferReadsTheCodeOfAnEightByteGoAway(t *testing.T) {
	var s h2Sniffer
	payload := []byte{0, 0, 0, 1, 0, 0, 0, 2} // last stream 1, INTERNAL_ERROR
	stream := append(h2frame(h2FrameSettings, nil), h2frame(h2FrameGoAway, payload)...)
	if code, ok := s.feed(stream); !ok || code != 2 {
		t.Fatalf("GOAWAY with 8 payload bytes: code %d, seen %v; want 2, true", code, ok)
	}
}

// TestStatsCountEachEventOnce: every counter in Stats, after a known
// sequence: two holders of one subchannel with a socket, released; a second
// subchannel left held at Close; a third whose NewSubConn fails.
func TestStatsCountEachEventOnce(t *testing.T) {
	target := holdingListener(t)
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	a, err := m.Acquire(addr(target), "a", WithAutoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Acquire(addr(target), "b")
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.rec.dial(context.Background(), target, defaultDial)
	if err != nil {
		t.Fatal(err)
	}
	cc.sc(0).push(connectivity.Ready)
	c.Close()
	cc.sc(0).push(connectivity.Idle) // a loss (the client closed the socket), and a's auto-reconnect
	a.Release("done")
	b.Release("done")
	if _, err := m.Acquire(addr("10.0.0.2:1"), "kept"); err != nil {
		t.Fatal(err)
	}
	cc.mu.Lock()
	cc.newErr["10.0.0.3:1"] = errors.New("refused")
	cc.mu.Unlock()
	if _, err := m.Acquire(addr("10.0.0.3:1"), "refused"); err == nil {
		t.Fatal("Acquire succeeded although NewSubConn failed")
	}
	if err := m.Close(); err == nil {
		t.Fatal("Close with a holder left returned nil")
	}
	got := m.Stats()
	want := trace.Stats{Created: 2, Shutdowns: 2, Destroyed: 2, Refs: 3, Unrefs: 3, Leaks: 1, SocketsOpened: 1, SocketsClosed: 1,
		ConnectionsLost: map[trace.Cause]uint64{trace.CauseLocal: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Stats() = %+v\nwant      %+v", got, want)
	}
	if n := cc.sc(0).connects.Load(); n != 1 {
		t.Fatalf("%d Connects on the subchannel, want 1 (the auto-reconnect)", n)
	}
	// Stats returns a copy.
	got.ConnectionsLost[trace.CauseLocal] = 99
	if m.Stats().ConnectionsLost[trace.CauseLocal] != 1 {
		t.Fatal("Stats() shares its ConnectionsLost map with the manager")
	}
}

// errorLog is a grpclog.DepthLoggerV2 that keeps the warning and error
// lines and drops the rest.
type errorLog struct {
	grpclog.LoggerV2
	mu     sync.Mutex
	errors []string
}

func (l *errorLog) InfoDepth(int, ...any) {}

func (l *errorLog) WarningDepth(d int, args ...any) { l.ErrorDepth(d, args...) }

func (l *errorLog) FatalDepth(_ int, args ...any) { panic(fmt.Sprint(args...)) }

func (l *errorLog) ErrorDepth(_ int, args ...any) {
	l.mu.Lock()
	l.errors = append(l.errors, fmt.Sprint(args...))
	l.mu.Unlock()
}

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.errors
	l.errors = nil
	return out
}

// captureLog sends grpc's log to an errorLog for the rest of the test. No
// grpc channel exists while this package's internal tests run, so nothing
// else logs meanwhile. grpc's default logger is restored afterwards.
func captureLog(t *testing.T) *errorLog {
	log := &errorLog{LoggerV2: grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard)}
	grpclog.SetLoggerV2(log)
	t.Cleanup(func() { grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr)) })
	return log
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

// TestSnapshotCountsConnectionLosses: a subchannel's snapshot counts its
// READY→IDLE transitions and names the last cause.
func TestSnapshotCountsConnectionLosses(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	defer m.Close()
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release("done")
	sc := cc.sc(0)
	for range 2 {
		sc.push(connectivity.Connecting)
		sc.push(connectivity.Ready)
		sc.push(connectivity.Idle)
	}
	s := m.Snapshot()
	if len(s) != 1 || s[0].ConnectionsLost != 2 || !strings.HasPrefix(s[0].LastLoss, string(trace.CauseUnknown)+": ") || s[0].State != "IDLE" {
		t.Fatalf("snapshot %+v, want 2 losses, the last one %s", s, trace.CauseUnknown)
	}
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

// TestACleanCloseRecordsNoLeakSeries: a counter recorded with 0 still shows
// up in a metrics backend as a series; a manager that leaked nothing must
// not record one.
func TestACleanCloseRecordsNoLeakSeries(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTarget("fake:///clean"))
	h, err := m.Acquire(addr("10.0.0.1:1"), "h")
	if err != nil {
		t.Fatal(err)
	}
	h.Release("done")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	cc.metrics.mu.Lock()
	defer cc.metrics.mu.Unlock()
	for k := range cc.metrics.counts {
		if strings.HasPrefix(k, MetricLeaks) {
			t.Fatalf("a clean Close recorded %q = %d", k, cc.metrics.counts[k])
		}
	}
}

// within runs f and fails the test if it has not returned after d: the
// tests below turn a hang into a quick failure. f's goroutine is left
// behind on failure.
func within(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
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

// TestChildClientConnTakesOneAddressAndUnwrapsPickers: the child
// ClientConn's NewSubConn wants exactly one address, and the pickers it
// passes up return grpc's own SubConns.
func TestChildClientConnTakesOneAddressAndUnwrapsPickers(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	child := m.ClientConn(cc, "child")
	if _, err := child.NewSubConn([]resolver.Address{addr("10.0.0.1:1"), addr("10.0.0.2:1")}, balancer.NewSubConnOptions{}); err == nil || !strings.Contains(err.Error(), `"child" needs exactly one address, got 2`) {
		t.Fatalf("NewSubConn with two addresses: %v", err)
	}
	if _, err := child.NewSubConn(nil, balancer.NewSubConnOptions{}); err == nil {
		t.Fatal("NewSubConn with no address succeeded")
	}
	sc, err := child.NewSubConn([]resolver.Address{addr("10.0.0.1:1")}, balancer.NewSubConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Shutdown()

	child.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: pickOnly{sc}})
	cc.mu.Lock()
	got := cc.states[len(cc.states)-1]
	cc.mu.Unlock()
	res, err := got.Picker.Pick(balancer.PickInfo{})
	if err != nil || res.SubConn != balancer.SubConn(cc.sc(0)) {
		t.Fatalf("the parent's picker picked %v, %v; want grpc's SubConn", res.SubConn, err)
	}
	if p := unwrapPickerOf(got.Picker); p != got.Picker {
		t.Fatal("unwrapPickerOf wrapped an unwrapping picker again")
	}
	if unwrapPickerOf(nil) != nil {
		t.Fatal("unwrapPickerOf(nil) is not nil")
	}
}

type pickOnly struct{ sc balancer.SubConn }

func (p pickOnly) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.sc}, nil
}

// TestH2SnifferNeverSpins: the sniffer consumes every byte it is fed, in
// any chunking, and returns.
func TestH2SnifferNeverSpins(t *testing.T) {
	ga := make([]byte, 8)
	binary.BigEndian.PutUint32(ga[4:], 11)
	stream := append(h2frame(h2FrameSettings, make([]byte, 6)), h2frame(0x0, nil)...) // an empty DATA frame
	stream = append(stream, h2frame(0x1, make([]byte, 40))...)
	stream = append(stream, h2frame(h2FrameGoAway, ga)...)
	for _, chunk := range []int{1, 2, 9, 10, len(stream)} {
		var s h2Sniffer
		var seen bool
		within(t, fmt.Sprintf("feeding in chunks of %d", chunk), 2*time.Second, func() {
			for p := stream; len(p) > 0; {
				n := min(chunk, len(p))
				if _, ok := s.feed(p[:n]); ok {
					seen = true
				}
				p = p[n:]
			}
			s.feed(nil)
		})
		if !seen || s.off {
			t.Fatalf("chunks of %d: GOAWAY seen %v, sniffer off %v", chunk, seen, s.off)
		}
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
		for {
			select {
			case e := <-s.C:
				out = append(out, e.Target+" "+string(e.Kind))
			default:
				return out
			}
		}
	}
	if got, want := drain(onlyA), []string{a + " manager_open", a + " manager_close"}; !slices.Equal(got, want) {
		t.Fatalf("filtered subscription got %v, want %v", got, want)
	}
	if got, want := drain(all), []string{a + " manager_open", a + " manager_close", b + " manager_open", b + " manager_close"}; !slices.Equal(got, want) {
		t.Fatalf("unfiltered subscription got %v, want %v", got, want)
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

// TestSyncThatChangesNothingCostsNothing: Sync's cost is a lookup per
// address plus the changes; an unchanged list neither allocates nor sweeps.
func TestSyncThatChangesNothingCostsNothing(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc, WithTraceRing(0))
	defer m.Close()
	s := m.NewSet("set", nil)
	defer s.Close()
	var addrs []resolver.Address
	for i := range 50 {
		addrs = append(addrs, addr(fmt.Sprintf("10.0.0.%d:1", i+1)))
	}
	if _, _, err := s.Sync(addrs); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if added, removed, err := s.Sync(addrs); len(added)+len(removed) != 0 || err != nil {
			t.Fatalf("unchanged Sync: added %d, removed %d, %v", len(added), len(removed), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per unchanged Sync, want 0", allocs)
	}
}

// TestSetReportsSubConnsReleasedBehindItsBack: a SubConn the set holds but
// someone else released is an error when the set lets it go, from Sync and
// from Close, and the other releases still happen.
func TestSetReportsSubConnsReleasedBehindItsBack(t *testing.T) {
	cc := newFakeCC()
	m := NewManager(cc)
	defer m.Close()
	s := m.NewSet("set", nil)
	added, _, err := s.Sync([]resolver.Address{addr("10.0.0.1:1"), addr("10.0.0.2:1"), addr("10.0.0.3:1")})
	if err != nil || len(added) != 3 {
		t.Fatalf("Sync: %d added, %v", len(added), err)
	}
	byKey := map[string]*SubConn{}
	for _, h := range added {
		byKey[h.rec.key()] = h
	}
	byKey["10.0.0.1:1"].Release("by hand")
	if _, removed, err := s.Sync([]resolver.Address{addr("10.0.0.2:1"), addr("10.0.0.3:1")}); !errors.Is(err, ErrReleased) || len(removed) != 1 {
		t.Fatalf("Sync dropping a SubConn released by hand: removed %d, err %v; want 1 and ErrReleased", len(removed), err)
	}
	byKey["10.0.0.2:1"].Release("by hand")
	if err := s.Close(); !errors.Is(err, ErrReleased) || !strings.Contains(err.Error(), "10.0.0.2:1") {
		t.Fatalf("Close with a SubConn released by hand: %v, want ErrReleased naming it", err)
	}
	if !byKey["10.0.0.3:1"].Released() || len(m.Snapshot()) != 0 {
		t.Fatalf("Close left subchannels: %+v", m.Snapshot())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := s.Sync(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
}
