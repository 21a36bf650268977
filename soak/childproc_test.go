package soak

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"github.com/leakproof/leakproof/testbackend"
)

// TestExecCheckCatchesASocketPassedToAChild passes a client socket to a
// child process on purpose (ExtraFiles, which os/exec does not close on
// exec): the child check names it, and once this process closes its end
// the connection stays ESTABLISHED in the namespace, held by the child,
// which the namespace check names. When the child exits, both are clean.
func TestExecCheckCatchesASocketPassedToAChild(t *testing.T) {
	b, err := testbackend.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	backends := map[netip.AddrPort]string{netip.MustParseAddrPort(b.Addr()): "b0"}
	conn, err := net.Dial("tcp4", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ino := sockowner.Inode(conn.(*net.TCPConn))
	owner := func(i uint64) string {
		if i == ino {
			return "channel under test"
		}
		return ""
	}

	// A child started the soak's way holds nothing.
	exe, _, env, err := childCommand("idle", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clean := exec.Command(exe)
	clean.Env = env
	if err := clean.Start(); err != nil {
		t.Fatal(err)
	}
	defer clean.Wait()
	defer clean.Process.Kill()
	if found, err := inheritedSockets(clean.Process.Pid, owner); err != nil || len(found) != 0 {
		t.Fatalf("a child started the soak's way holds sockets: %v (%v)", found, err)
	}

	f, err := conn.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	leaky := exec.Command(exe)
	leaky.Env = env
	leaky.ExtraFiles = []*os.File{f}
	if err := leaky.Start(); err != nil {
		t.Fatal(err)
	}
	found, err := inheritedSockets(leaky.Process.Pid, owner)
	if err != nil || len(found) != 1 || !strings.Contains(found[0], "channel under test") {
		t.Fatalf("inheritedSockets = %v, %v; want the socket passed in ExtraFiles, named", found, err)
	}
	t.Logf("child check: %v", found)

	// Close every descriptor of ours: the child keeps the connection.
	f.Close()
	conn.Close()
	stray, err := strayConnections(backends)
	if err != nil || len(stray) != 1 || !strings.Contains(stray[0], "ESTABLISHED") || !strings.Contains(stray[0], fmt.Sprintf("held by process %d", leaky.Process.Pid)) {
		t.Fatalf("strayConnections = %v, %v; want the connection the child keeps ESTABLISHED, named with the child", stray, err)
	}
	t.Logf("namespace check: %v", stray)

	leaky.Process.Kill()
	leaky.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stray, err = strayConnections(backends)
		if err == nil && len(stray) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the child exited: %v, %v", stray, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
