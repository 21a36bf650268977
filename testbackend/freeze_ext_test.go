package testbackend_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leakproof/leakproof/internal/procfs"
	echov1 "github.com/leakproof/leakproof/proto/leakproof/echo/v1"
	"github.com/leakproof/leakproof/testbackend"
)

// rawHeld opens a raw TCP connection to b, sends the HTTP/2 preface as a
// gRPC client would, and waits until b holds one more connection.
func rawHeld(t *testing.T, b *testbackend.Backend) *net.TCPConn {
	t.Helper()
	before := b.Stats().Held
	c, err := net.DialTimeout("tcp4", b.Addr(), defaultTestTimeout)
	if err != nil {
		t.Fatalf("TCP dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
		t.Fatalf("writing the preface: %v", err)
	}
	waitFor(t, "the connection to be held", func() bool { return b.Stats().Held == before+1 })
	return c.(*net.TCPConn)
}

// TestHeldConnectionWhoseClientLeavesIsClosed: a frozen backend notices a
// client that closes (FIN) or resets (RST) its held connection and closes
// its end, without any Thaw, Stop or Close.
func TestHeldConnectionWhoseClientLeavesIsClosed(t *testing.T) {
	for _, how := range []string{"close", "reset"} {
		t.Run(how, func(t *testing.T) {
			b := start(t, testbackend.Frozen())
			c := rawHeld(t, b)
			if how == "reset" {
				c.SetLinger(0)
			}
			c.Close()
			waitFor(t, "the backend to close the held connection", func() bool {
				s := b.Stats()
				return s.Held == 0 && s.Open == 0
			})
		})
	}
}

// TestThawResetsHeldConnectionsAndServes: Thaw resets what the freeze held
// and serves new connections; Freeze holds them again.
func TestThawResetsHeldConnectionsAndServes(t *testing.T) {
	b := start(t, testbackend.Frozen())
	if !b.Stats().Frozen {
		t.Fatal("Stats().Frozen = false for a backend started Frozen")
	}
	held := rawHeld(t, b)
	if n := b.Thaw(); n != 1 {
		t.Fatalf("Thaw() reset %d connections, want 1", n)
	}
	held.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	if _, err := held.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("held connection after Thaw: read error %v, want a reset", err)
	}
	if s := b.Stats(); s.Frozen || s.Held != 0 {
		t.Fatalf("Stats() after Thaw = %+v, want not frozen, nothing held", s)
	}
	_, client := dial(t, b.Addr())
	mustEcho(t, client, b)

	// Freeze again: the served connection goes on; new ones are held.
	b.Freeze()
	mustEcho(t, client, b)
	rawHeld(t, b)
	if s := b.Stats(); !s.Frozen || s.Held != 1 || s.Open != 2 {
		t.Fatalf("Stats() after Freeze = %+v, want frozen, 1 held of 2 open", s)
	}
}

// freezeCycle runs one freeze as the soak does: Freeze, clients that keep
// trying to connect within a deadline and then give up (their channels
// close), and a client that stays connected but gives up only after
// Thaw. It returns the held connections just before Thaw, and after it.
func freezeCycle(t *testing.T, b *testbackend.Backend, clients int) (beforeThaw, afterThaw int) {
	t.Helper()
	b.Freeze()
	for range clients {
		cc, client := dial(t, b.Addr())
		ctx, cancel := context.WithTimeout(context.Background(), 2*shortTimeout)
		_, err := client.Echo(ctx, &echov1.EchoRequest{Message: "frozen"}, grpc.WaitForReady(true))
		cancel()
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("Echo to a frozen backend: %v, want DeadlineExceeded", err)
		}
		cc.Close()
	}
	// The clients that gave up are noticed.
	waitFor(t, "the held connections of closed clients to go", func() bool { return b.Stats().Held == 0 })
	// One client that is still there when the freeze ends.
	stays := rawHeld(t, b)
	beforeThaw = b.Stats().Held
	b.Thaw()
	stays.Close()
	time.Sleep(50 * time.Millisecond)
	return beforeThaw, b.Stats().Held
}

// TestFreezeCyclesDoNotAccumulateHeldConnections drives several freezes
// with clients coming and going, and asserts that the held connections (and
// the backend's open sockets in /proc) do not grow from cycle to cycle.
func TestFreezeCyclesDoNotAccumulateHeldConnections(t *testing.T) {
	b := start(t)
	const cycles = 4
	var held, fds []int
	for i := range cycles {
		before, after := freezeCycle(t, b, 3)
		if after != 0 {
			t.Fatalf("cycle %d: %d connections held after Thaw, want 0", i, after)
		}
		held = append(held, before)
		fds = append(fds, backendFDs(t, b))
	}
	t.Logf("held before each Thaw %v; the backend's descriptors after each cycle %v", held, fds)
	for i := 1; i < cycles; i++ {
		if held[i] > held[0] || fds[i] > fds[0] {
			t.Fatalf("held connections %v or backend descriptors %v grow from cycle to cycle", held, fds)
		}
	}
}

// TestStallForeverHoldsUntilClose is the model the frozen backend used to
// follow, kept as an option: nothing it held is noticed or thawed, so the
// held connections grow from freeze to freeze until Close.
func TestStallForeverHoldsUntilClose(t *testing.T) {
	b := start(t, testbackend.StallForever())
	var held []int
	for range 3 {
		b.Freeze()
		c, err := net.DialTimeout("tcp4", b.Addr(), defaultTestTimeout)
		if err != nil {
			t.Fatal(err)
		}
		want := len(held) + 1
		waitFor(t, fmt.Sprintf("%d held connection(s)", want), func() bool { return b.Stats().Held == want })
		c.Close()
		b.Thaw()
		time.Sleep(50 * time.Millisecond)
		held = append(held, b.Stats().Held)
	}
	if !slices.Equal(held, []int{1, 2, 3}) {
		t.Fatalf("held after each thaw %v, want 1, 2, 3 (nothing noticed, nothing thawed)", held)
	}
	b.Close()
	if s := b.Stats(); s.Open != 0 {
		t.Fatalf("Stats().Open = %d after Close, want 0", s.Open)
	}
}

// backendFDs counts the descriptors of this process that are b's sockets,
// from /proc/self/fd and b.Inodes.
func backendFDs(t *testing.T, b *testbackend.Backend) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors from /proc/self/fd, which only Linux has")
	}
	fds, err := procfs.FDs()
	if err != nil {
		t.Fatal(err)
	}
	mine := procfs.SocketInodes(fds)
	n := 0
	for _, ino := range b.Inodes() {
		if _, ok := mine[ino]; ok {
			n++
		}
	}
	return n
}

// TestInodesNameTheBackendsDescriptors: Inodes lists the listener and every
// open connection, held ones included, and each is a descriptor of this
// process.
func TestInodesNameTheBackendsDescriptors(t *testing.T) {
	b := start(t, testbackend.ConnLimit(1))
	_, client := dial(t, b.Addr())
	mustEcho(t, client, b)
	rawHeld(t, b)
	inodes := b.Inodes()
	if len(inodes) != 3 {
		t.Fatalf("Inodes() = %v, want 3 (listener, served, held)", inodes)
	}
	if n := backendFDs(t, b); n != 3 {
		t.Fatalf("%d of the backend's inodes are descriptors of this process, want 3", n)
	}
	b.Close()
	if got := b.Inodes(); len(got) != 0 {
		t.Fatalf("Inodes() after Close = %v, want none", got)
	}
}
