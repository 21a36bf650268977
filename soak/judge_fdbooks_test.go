package soak

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"github.com/leakproof/leakproof/testbackend"
)

// waitFor polls cond until it holds; the test's deadline bounds a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); {
		if time.Since(start) > time.Minute {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestJudgeBooksNameEveryDescriptorsOwner reads this process's real
// descriptors: a socket booked to a channel is the client's, a backend's
// listener and connections are that backend's, and every other descriptor
// is other, its sockets listed as evidence up to maxListed; the books add
// up to every descriptor. The sample's books also carry each backend's
// open and held connections, the held ones only when a backend holds some.
func TestJudgeBooksNameEveryDescriptorsOwner(t *testing.T) {
	frozen, err := testbackend.Start(testbackend.Name("frozen"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(frozen.Close) // after the connections to it close (cleanups run last first)
	b0, err := testbackend.Start(testbackend.Name("b0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b0.Close)
	frozen.Freeze()

	socks := newSockTracker()
	ch := socks.register("main", kindMain)
	socks.inodes = map[uint64]*chanRec{}
	dial := func(addr string) *net.TCPConn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.TCPConn)
	}
	client := dial(b0.Addr())
	socks.inodes[sockowner.Inode(client)] = ch
	dial(frozen.Addr())
	dial(frozen.Addr())
	waitFor(t, "the backends' accepts", func() bool {
		return b0.Stats().Open == 1 && frozen.Stats().Held == 2
	})

	// Sockets nobody owns: a listener and both ends of its connections.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	for range maxListed {
		dial(lis.Addr().String())
		c, err := lis.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}

	backends := []bookBackend{{"frozen", frozen}, {"b0", b0}}
	books, err := readBooks(socks, backends)
	if err != nil {
		t.Fatal(err)
	}
	if books.client != 1 || books.backend["b0"] != 2 || books.backend["frozen"] != 3 || len(books.backend) != 2 {
		t.Errorf("client %d, backends %v; want 1, b0:2 frozen:3", books.client, books.backend)
	}
	if books.other < 2*maxListed+1 || books.total != books.client+books.other+books.backend["b0"]+books.backend["frozen"] {
		t.Errorf("total %d, other %d: the books do not add up", books.total, books.other)
	}
	if len(books.unowned) != maxListed || !strings.HasPrefix(books.unowned[0], "fd ") || !strings.Contains(books.unowned[0], "socket:[") {
		t.Errorf("unowned evidence: %q", books.unowned)
	}

	r := &runner{socks: socks}
	r.backends = []*testbackend.Backend{frozen, b0}
	r.info = []BackendInfo{{Name: "frozen"}, {Name: "b0"}}
	s := Sample{Held: map[string]int{"gone": 1}}
	live, err := r.readOwners(&s)
	if err != nil {
		t.Fatal(err)
	}
	if live != 1 || s.ClientFDs != 1 || s.OtherFDs < 2*maxListed+1 || s.BackendFDs["frozen"] != 3 || s.BackendFDs["b0"] != 2 ||
		s.BackendConns["frozen"] != 2 || s.BackendConns["b0"] != 1 || len(s.Held) != 1 || s.Held["frozen"] != 2 || s.HeapInUse == 0 {
		t.Errorf("sample: %d live channel(s), %+v", live, s)
	}

	frozen.Thaw()
	waitFor(t, "the held connections' reset", func() bool { return frozen.Stats().Held == 0 })
	s = Sample{Held: map[string]int{"gone": 1}}
	if _, err := r.readOwners(&s); err != nil {
		t.Fatal(err)
	}
	if s.Held != nil {
		t.Errorf("no backend holds a connection, yet held: %v", s.Held)
	}
}
