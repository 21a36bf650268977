package subconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		{"draining under TLS", nil, false, false, trace.KindGoAway, string(trace.CauseGoAwayInferred) + ": transport draining with its socket still open (GOAWAY; under TLS, subconn.Credentials reads the frames)", "closed by client"},
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
