package leaktest

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/leakproof/leakproof/internal/procfs"
)

// Socket is a TCP socket held by this process, as /proc/self/net/tcp or
// /proc/self/net/tcp6 describes it.
type Socket struct {
	Inode  uint64         // the inode in the "socket:[inode]" target of its descriptor
	Local  netip.AddrPort // normalised: IPv4-mapped IPv6 addresses are unmapped
	Remote netip.AddrPort // normalised like Local; 0.0.0.0:0 or [::]:0 while listening
	State  string         // the kernel's name for its TCP state, such as "ESTABLISHED"
}

// String formats s as "local -> remote STATE".
func (s Socket) String() string {
	return fmt.Sprintf("%v -> %v %v", s.Local, s.Remote, s.State)
}

func socketOf(s procfs.Socket) Socket {
	return Socket{Inode: s.Inode, Local: s.Local, Remote: s.Remote, State: s.State.String()}
}

// pollerOnce starts the runtime's network poller, which keeps an epoll
// descriptor and an eventfd for the life of the process from the first
// timer, pipe or socket on. Starting it before the first baseline keeps
// those two out of every report.
var pollerOnce sync.Once

func startPoller() {
	r, w, err := os.Pipe()
	if err == nil {
		r.Close()
		w.Close()
	}
}

// readProc reads this process's descriptors and the TCP sockets they point
// to.
func readProc() (map[int]string, map[uint64]procfs.Socket, error) {
	pollerOnce.Do(startPoller)
	fds, err := procfs.FDs()
	if err != nil {
		return nil, nil, fmt.Errorf("leaktest: %w", err)
	}
	socks, err := procfs.Sockets(procfs.SocketInodes(fds))
	if err != nil {
		return nil, nil, fmt.Errorf("leaktest: %w", err)
	}
	return fds, socks, nil
}

// HeldSocket is a connection of this network namespace that another
// process holds.
type HeldSocket struct {
	Socket  Socket // the connection
	PID     int    // the process that holds it
	Command string // its command line, as /proc/<pid>/cmdline has it
}

// String formats h as "tcp local -> remote STATE, held by process 123 (cmd)".
func (h HeldSocket) String() string {
	return fmt.Sprintf("tcp %v, held by process %d (%s)", h.Socket, h.PID, h.Command)
}

// holders names the process holding each socket of socks. A socket no
// other process holds is one this process closed between two readings: it
// is left out.
func holders(socks map[uint64]procfs.Socket) []HeldSocket {
	if len(socks) == 0 {
		return nil
	}
	inodes := map[uint64]struct{}{}
	for ino := range socks {
		inodes[ino] = struct{}{}
	}
	var out []HeldSocket
	for ino, h := range procfs.Holders(inodes) {
		out = append(out, HeldSocket{Socket: socketOf(socks[ino]), PID: h.PID, Command: h.Command})
	}
	slices.SortFunc(out, func(a, b HeldSocket) int { return a.Socket.Local.Compare(b.Socket.Local) })
	return out
}
