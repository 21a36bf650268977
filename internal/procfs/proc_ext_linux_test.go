package procfs_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakproof/leakproof/internal/procfs"
)

// TestFDsReadsLongTargets: a descriptor's target longer than the first
// readlink buffer (512 bytes) is read again in full, not cut short. The
// path is a real file under a directory chain 600-odd bytes deep.
func TestFDsReadsLongTargets(t *testing.T) {
	path := t.TempDir()
	for _, c := range "abc" {
		path = filepath.Join(path, strings.Repeat(string(c), 200))
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(path, "long.txt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fds, err := procfs.FDs()
	if err != nil {
		t.Fatal(err)
	}
	if got := fds[int(f.Fd())]; got != path {
		t.Errorf("fd %d of a %d-byte path: target %q (%d bytes), want the whole path", f.Fd(), len(path), got, len(got))
	}
}

// TestFDsOfThisProcess: FDsOf lists a process by pid, here this one, and
// sees the same descriptors as FDs, the listings' own aside.
func TestFDsOfThisProcess(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	self, err := procfs.FDs()
	if err != nil {
		t.Fatal(err)
	}
	byPid, err := procfs.FDsOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self[int(f.Fd())] != os.DevNull || byPid[int(f.Fd())] != os.DevNull {
		t.Errorf("fd %d: FDs says %q, FDsOf %q; want %s", f.Fd(), self[int(f.Fd())], byPid[int(f.Fd())], os.DevNull)
	}
	for fd, target := range self {
		if byPid[fd] != target {
			t.Errorf("fd %d: FDs says %q, FDsOf %q", fd, target, byPid[fd])
		}
	}
	if _, err := procfs.FDsOf(-1); err == nil {
		t.Error("FDsOf(-1): no error")
	}
}

// TestSocketsMatchTheKernel checks the readers against the running kernel:
// a real connection's addresses, as net.Conn reports them, come out of
// /proc/self/net/tcp unchanged, with their states, both from the sockets
// this process holds and from the whole namespace.
func TestSocketsMatchTheKernel(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	client, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	held, err := procfs.HeldSockets()
	if err != nil {
		t.Fatal(err)
	}
	all, err := procfs.NetSockets()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := procfs.FDs()
	if err != nil {
		t.Fatal(err)
	}
	inNet := map[uint64]procfs.Socket{}
	for _, s := range all {
		inNet[s.Inode] = s
	}
	byEnds := map[[2]netip.AddrPort]procfs.Socket{}
	for ino, s := range held {
		if s.Inode != ino {
			t.Errorf("HeldSockets: %v under inode %d", s, ino)
		}
		if inNet[ino] != s {
			t.Errorf("HeldSockets: %v; NetSockets: %v", s, inNet[ino])
		}
		if !hasTarget(fds, fmt.Sprintf("socket:[%d]", ino)) {
			t.Errorf("HeldSockets: %v, but no descriptor points to it", s)
		}
		byEnds[[2]netip.AddrPort{s.Local, s.Remote}] = s
	}
	ap := func(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }
	for _, want := range []struct {
		local, remote netip.AddrPort
		state         procfs.TCPState
		conn          bool
	}{
		{ap(lis.Addr()), netip.MustParseAddrPort("0.0.0.0:0"), procfs.TCPListen, false},
		{ap(client.LocalAddr()), ap(client.RemoteAddr()), procfs.TCPEstablished, true},
		{ap(server.LocalAddr()), ap(server.RemoteAddr()), procfs.TCPEstablished, true},
	} {
		s, ok := byEnds[[2]netip.AddrPort{want.local, want.remote}]
		if !ok {
			t.Errorf("no socket %v -> %v among the held ones: %v", want.local, want.remote, held)
			continue
		}
		if s.State != want.state || s.IsConnection() != want.conn {
			t.Errorf("socket %v: state %v, a connection: %v; want %v, %v", s, s.State, s.IsConnection(), want.state, want.conn)
		}
	}
}

func hasTarget(fds map[int]string, target string) bool {
	for _, t := range fds {
		if t == target {
			return true
		}
	}
	return false
}
