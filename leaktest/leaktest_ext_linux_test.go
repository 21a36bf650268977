package leaktest_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"github.com/leakproof/leakproof/leaktest"
)

func TestCheckReportsLeakedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leaked.txt")
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	verify()
	rt.wantError(t, "1 file descriptor(s) leaked", fmt.Sprintf("fd %d -> %s", f.Fd(), path))
}

func TestCheckPassesWhenFileClosedWhilePolling(t *testing.T) {
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(passDeadline))
	f, err := os.Create(filepath.Join(t.TempDir(), "closed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(releaseAfter, func() { f.Close() })
	verify()
	rt.wantNoError(t)
}

func TestCheckReportsReusedDescriptorNumber(t *testing.T) {
	dir := t.TempDir()
	before, err := os.Create(filepath.Join(dir, "before.txt"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	fd := before.Fd()
	before.Close()
	after, err := os.Create(filepath.Join(dir, "after.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if after.Fd() != fd {
		t.Fatalf("the kernel gave fd %d, not the freed fd %d; the test needs the number reused", after.Fd(), fd)
	}
	rt := &recordingT{}
	leaktest.VerifyNone(rt, base, leaktest.Deadline(failDeadline))
	rt.wantError(t, fmt.Sprintf("fd %d -> %s", fd, filepath.Join(dir, "after.txt")))
}

func TestCheckReportsLeakedConnection(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends(addr))
	client, server := connect(t, lis)
	defer client.Close()
	defer server.Close()
	verify()

	errs := rt.errors()
	if len(errs) != 2 {
		t.Fatalf("got %d errors, want one for descriptors and one for the backend:\n%s", len(errs), strings.Join(errs, "\n---\n"))
	}
	t.Logf("the reports, as a user sees them:\n%s", strings.Join(errs, "\n"))
	conn := fmt.Sprintf("%v -> %v ESTABLISHED", client.LocalAddr(), addr)
	for _, want := range []string{"2 file descriptor(s) leaked", conn, fmt.Sprintf("%v -> %v ESTABLISHED", addr, client.LocalAddr())} {
		if !strings.Contains(errs[0], want) {
			t.Errorf("descriptor report does not mention %q:\n%s", want, errs[0])
		}
	}
	for _, want := range []string{fmt.Sprintf("1 socket(s) to backend %s", addr), "want 0 (the baseline)", conn} {
		if !strings.Contains(errs[1], want) {
			t.Errorf("backend report does not mention %q:\n%s", want, errs[1])
		}
	}
}

func TestCheckReportsCloseWait(t *testing.T) {
	lis := listen(t)
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends(lis.Addr().String()))
	client, server := connect(t, lis)
	defer client.Close()
	server.Close() // the backend hangs up; the client never closes its end
	verify()
	errs := rt.errors()
	want := fmt.Sprintf("%v -> %v CLOSE_WAIT", client.LocalAddr(), lis.Addr())
	if len(errs) != 2 || !strings.Contains(errs[0], want) || !strings.Contains(errs[1], want) {
		t.Errorf("want two errors naming %q, got:\n%s", want, strings.Join(errs, "\n---\n"))
	}
}

func TestCheckPassesWhenConnectionClosedWhilePolling(t *testing.T) {
	lis := listen(t)
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(passDeadline), leaktest.Backends(lis.Addr().String()))
	client, server := connect(t, lis)
	time.AfterFunc(releaseAfter, func() {
		client.Close()
		server.Close()
	})
	verify()
	rt.wantNoError(t)
}

func TestBackendCountSurvivesIgnoredDescriptors(t *testing.T) {
	lis := listen(t)
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends(lis.Addr().String()),
		leaktest.IgnoreFD(func(target string) bool { return strings.HasPrefix(target, "socket:") }))
	client, server := connect(t, lis)
	defer client.Close()
	defer server.Close()
	verify()
	rt.wantError(t, fmt.Sprintf("1 socket(s) to backend %v", lis.Addr()))
}

func TestIgnoreFD(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kept-open.log")
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.IgnoreFD(func(target string) bool { return target == path }))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	verify()
	rt.wantNoError(t)
}

func TestReportNamesOwningSubchannel(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends(addr))
	client, server := connect(t, lis)
	defer client.Close()
	defer server.Close()
	// This registration stands in for the socket-tracking dialer in package
	// subconn, which registers every connection a subchannel opens.
	unregister := sockowner.Register(client.LocalAddr(), client.RemoteAddr(), sockowner.Owner{
		Manager: 3, Target: "passthrough:///leaktest", Subchannel: 42, Key: addr,
	})
	defer unregister()
	verify()

	owner := fmt.Sprintf(`owned by subchannel 42 (key %q, manager 3, target "passthrough:///leaktest")`, addr)
	errs := rt.errors()
	if len(errs) != 2 {
		t.Fatalf("got %d errors, want 2:\n%s", len(errs), strings.Join(errs, "\n---\n"))
	}
	for _, e := range errs {
		if !strings.Contains(e, fmt.Sprintf("%v -> %v ESTABLISHED%s", client.LocalAddr(), addr, ", "+owner)) {
			t.Errorf("report does not name the owner of the client socket:\n%s", e)
		}
	}
	// The server's end of the connection has no owner.
	if strings.Count(errs[0], "owned by") != 1 {
		t.Errorf("want exactly one owned socket in:\n%s", errs[0])
	}
}

func TestSocketsTo(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	count := func() int {
		t.Helper()
		n, err := leaktest.SocketsTo(addr)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("SocketsTo(%s) = %d before dialing, want 0 (the listener is not a connection to it)", addr, n)
	}
	c1, s1 := connect(t, lis)
	if n := count(); n != 1 {
		t.Errorf("SocketsTo(%s) = %d with one connection open, want 1", addr, n)
	}
	c2, s2 := connect(t, lis)
	if n := count(); n != 2 {
		t.Errorf("SocketsTo(%s) = %d with two connections open, want 2", addr, n)
	}
	c1.Close()
	s1.Close()
	if n := count(); n != 1 {
		t.Errorf("SocketsTo(%s) = %d after closing one, want 1", addr, n)
	}
	c2.Close()
	s2.Close()
	if n := count(); n != 0 {
		t.Errorf("SocketsTo(%s) = %d after closing both, want 0", addr, n)
	}
}

// TestSnapshotMatchesTheKernel checks the parser against the running kernel:
// a real connection's addresses, as net.Conn reports them, must come out of
// /proc/self/net/tcp unchanged.
func TestSnapshotMatchesTheKernel(t *testing.T) {
	lis := listen(t)
	client, server := connect(t, lis)
	defer client.Close()
	defer server.Close()
	snap, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	byEnds := map[[2]netip.AddrPort]leaktest.Socket{}
	for _, s := range snap.Sockets {
		byEnds[[2]netip.AddrPort{s.Local, s.Remote}] = s
	}
	ap := func(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }
	for _, want := range []struct {
		local, remote netip.AddrPort
		state         string
	}{
		{ap(lis.Addr()), netip.MustParseAddrPort("0.0.0.0:0"), "LISTEN"},
		{ap(client.LocalAddr()), ap(client.RemoteAddr()), "ESTABLISHED"},
		{ap(server.LocalAddr()), ap(server.RemoteAddr()), "ESTABLISHED"},
	} {
		s, ok := byEnds[[2]netip.AddrPort{want.local, want.remote}]
		if !ok {
			t.Errorf("no socket %v -> %v in the snapshot: %v", want.local, want.remote, snap.Sockets)
			continue
		}
		if s.State != want.state {
			t.Errorf("socket %v: state %v, want %v", s, s.State, want.state)
		}
		if target := fmt.Sprintf("socket:[%d]", s.Inode); !hasTarget(snap.FDs, target) {
			t.Errorf("socket %v: no descriptor points to %s", s, target)
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

// TestFindReturnsTypedLeaks checks the core that VerifyNone formats: a
// connection left open comes back as typed evidence (its descriptors, the
// backend's counts and the socket itself), and nothing once it is closed.
func TestFindReturnsTypedLeaks(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	client, server := connect(t, lis)
	l := leaktest.Find(base, leaktest.Deadline(failDeadline), leaktest.Backends(addr))
	if l.Clean() {
		t.Fatal("Find found nothing with a connection open")
	}
	if len(l.Errors) != 0 || l.Goroutines != nil {
		t.Errorf("Find: errors %v, goroutines %v; want neither", l.Errors, l.Goroutines)
	}
	if len(l.FDs) != 2 {
		t.Errorf("Find: %d descriptors, want 2 (both ends): %v", len(l.FDs), l.FDs)
	}
	if len(l.Backends) != 1 {
		t.Fatalf("Find: %d backends, want 1: %+v", len(l.Backends), l.Backends)
	}
	b := l.Backends[0]
	if b.Backend.String() != addr || b.Baseline != 0 || b.Now != 1 || len(b.FDs) != 1 {
		t.Fatalf("Find: backend %+v, want %s with 0 at the baseline, 1 now and its descriptor", b, addr)
	}
	if s := b.FDs[0].Socket; s == nil || s.Local.String() != client.LocalAddr().String() || s.State != "ESTABLISHED" {
		t.Errorf("Find: backend socket %v, want %v -> %s ESTABLISHED", s, client.LocalAddr(), addr)
	}
	client.Close()
	server.Close()
	if l := leaktest.Find(base, leaktest.Deadline(passDeadline), leaktest.Backends(addr)); l != nil {
		t.Errorf("Find after closing both ends = %v, want nil", l)
	}
}

// TestFindSortsLeakedFDsByNumber: Find reports leaked descriptors sorted by
// number, whatever order the kernel lists them in and a map hands them back.
// Eight of them: a report that kept the map's order would come out sorted
// by chance once in 40,320 runs.
func TestFindSortsLeakedFDsByNumber(t *testing.T) {
	dir := t.TempDir()
	base, err := leaktest.Take()
	if err != nil {
		t.Fatal(err)
	}
	var opened []int
	for i := range 8 {
		f, err := os.Create(filepath.Join(dir, strings.Repeat("f", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		opened = append(opened, int(f.Fd()))
	}
	l := leaktest.Find(base, leaktest.Deadline(failDeadline))
	if l == nil {
		t.Fatal("Find found nothing with eight files open")
	}
	var nums []int
	for _, fd := range l.FDs {
		nums = append(nums, fd.Num)
	}
	slices.Sort(opened)
	if !slices.Equal(nums, opened) {
		t.Errorf("Find reported descriptors %v, want %v in this order", nums, opened)
	}
}

// A child process that inherits a socket keeps its connection ESTABLISHED
// after this process closes it: leaktest counts it with the backend's
// sockets and names the process.
func TestCheckReportsConnectionHeldByChildProcess(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(failDeadline), leaktest.Backends(addr))
	client, server := connect(t, lis)
	defer server.Close()
	child := handToChild(t, client)
	verify()

	report := strings.Join(rt.errors(), "\n")
	t.Logf("the report, as a user sees it:\n%s", report)
	for _, want := range []string{
		fmt.Sprintf("1 socket(s) to backend %s", addr),
		fmt.Sprintf("%v -> %v ESTABLISHED, held by process %d (sleep 30)", client.LocalAddr(), addr, child.Process.Pid),
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report does not mention %q", want)
		}
	}
}

// A connection another process held at the baseline is not this test's.
func TestCheckIgnoresConnectionHeldElsewhereAtTheBaseline(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	client, server := connect(t, lis)
	handToChild(t, client)
	rt := &recordingT{}
	verify := leaktest.Check(rt, leaktest.Deadline(passDeadline), leaktest.Backends(addr))
	verify()
	rt.wantNoError(t)
	server.Close()
}

// handToChild starts a child process (sleep 30) that inherits client's
// socket, and closes client here: the connection stays ESTABLISHED, held by
// the child only, until the test ends and kills it.
func handToChild(t *testing.T, client net.Conn) *exec.Cmd {
	t.Helper()
	f, err := client.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "30")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	f.Close()
	client.Close()
	return child
}
