package leaktest

import (
	"net/netip"

	"github.com/leakproof/leakproof/internal/procfs"
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

	goroutines goleak.Option            // ignores the goroutines running at the baseline
	socks      map[uint64]procfs.Socket // Sockets, as Find compares them
	channels   map[int64]bool           // channelz ids of the grpc channels open at the baseline
	foreign    map[uint64]procfs.Socket // connections other processes held at the baseline
	err        error                    // why FDs and Sockets are nil
}

// Take records the goroutines, file descriptors and TCP sockets of this
// process.
//
// If descriptors and sockets cannot be read, Take returns the error together
// with a Snapshot that holds the goroutine baseline alone, with which
// VerifyNone checks goroutines only. Outside Linux this is always the case,
// and the error wraps errors.ErrUnsupported.
func Take() (*Snapshot, error) {
	s := &Snapshot{goroutines: goleak.IgnoreCurrent(), channels: channelIDs()}
	s.FDs, s.socks, s.err = readProc()
	if s.err == nil {
		s.foreign, _ = procfs.HeldElsewhere(nil)
	}
	if s.socks != nil {
		s.Sockets = make(map[uint64]Socket, len(s.socks))
		for ino, sock := range s.socks {
			s.Sockets[ino] = socketOf(sock)
		}
	}
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

func countTo(socks map[uint64]procfs.Socket, remote netip.AddrPort) int {
	n := 0
	for _, s := range socks {
		if s.Remote == remote && s.IsConnection() {
			n++
		}
	}
	return n
}
