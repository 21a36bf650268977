package leaktest

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/goleak"
)

// Snapshot is what this process holds at one moment: the baseline that
// VerifyNone compares against.
type Snapshot struct {
	// FDs maps each open file descriptor to its target as readlink of
	// /proc/self/fd/N reports it: a path, "socket:[123]", "pipe:[456]",
	// "anon_inode:[eventpoll]". It is nil where descriptors cannot be read.
	FDs map[int]string

	// Sockets maps the inode of each TCP socket that a descriptor in FDs
	// points to onto its addresses and state.
	Sockets map[uint64]Socket

	goroutines goleak.Option // ignores the goroutines running at the baseline
	err        error         // why FDs and Sockets are nil
}

// Take records the goroutines, file descriptors and TCP sockets of this
// process.
//
// If descriptors and sockets cannot be read, Take returns the error together
// with a Snapshot that holds the goroutine baseline alone, with which
// VerifyNone checks goroutines only. Outside Linux this is always the case,
// and the error wraps errors.ErrUnsupported.
func Take() (*Snapshot, error) {
	s := &Snapshot{goroutines: goleak.IgnoreCurrent()}
	s.FDs, s.Sockets, s.err = readProc()
	return s, s.err
}

// SocketsTo returns the number of TCP sockets this process holds whose
// remote address is addr, an IP:port such as "127.0.0.1:50051", in any state
// but LISTEN and TIME_WAIT. Use it while a test runs to assert, say, that an
// open channel holds exactly one connection to a backend.
func SocketsTo(addr string) (int, error) {
	ap, err := parseBackend(addr)
	if err != nil {
		return 0, err
	}
	_, socks, err := readProc()
	if err != nil {
		return 0, err
	}
	return countTo(socks, ap), nil
}

// Sockets returns the TCP sockets this process holds, listeners included,
// sorted by remote and then local address.
func Sockets() ([]Socket, error) {
	_, socks, err := readProc()
	if err != nil {
		return nil, err
	}
	list := make([]Socket, 0, len(socks))
	for _, s := range socks {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b Socket) int {
		return cmp.Or(a.Remote.Compare(b.Remote), a.Local.Compare(b.Local), cmp.Compare(a.Inode, b.Inode))
	})
	return list, nil
}

func countTo(socks map[uint64]Socket, remote netip.AddrPort) int {
	n := 0
	for _, s := range socks {
		if s.Remote == remote && s.counted() {
			n++
		}
	}
	return n
}

// socketInode returns the inode of a "socket:[123]" target.
func socketInode(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(s, 10, 64)
	return ino, err == nil
}

// NetSockets returns every TCP socket in this process's network namespace,
// whichever process holds it (from /proc/self/net/tcp and tcp6), listeners
// included. A socket this process holds has an inode among Take's Sockets;
// one it does not was opened, or inherited, by another process: a child
// that kept a socket of ours keeps its connection ESTABLISHED after we
// close our descriptor.
func NetSockets() ([]Socket, error) {
	return readNetSockets()
}
