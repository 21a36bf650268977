package soak

import (
	"fmt"
	"maps"
	"slices"

	"github.com/leakproof/leakproof/internal/procfs"
	"github.com/leakproof/leakproof/testbackend"
)

// Owners of descriptors, as the books and the report name them.
const (
	ownerClient = "client" // the sockets of the channels under test
	ownerOther  = "other"  // files, pipes, the runtime's poller, the trace writer
)

// backendOwner names a backend as an owner of descriptors.
func backendOwner(name string) string { return "backend " + name }

// fdBooks is one reading of the process's descriptors, each with its owner.
// The soak runs clients and backends in one process; the books keep them
// apart so that a backend's leak is not a client's, and the other way
// round:
//
//   - a socket the run's channels dialed is the client's: their dialers
//     book every socket by inode until its Close;
//   - a socket a backend has open (listener, served or held connection) is
//     that backend's: its tracker knows the inodes (testbackend.Inodes);
//   - everything else (files, pipes, the runtime's poller, the trace
//     writer, and a socket nobody owns) is other.
//
// Inodes name a socket whatever its TCP state, so a socket the kernel has
// already moved to CLOSE (gone from /proc/net/tcp) is still booked.
type fdBooks struct {
	total   int
	client  int
	backend map[string]int // backend name → its descriptors
	other   int
	// unowned lists the first descriptors in other that are sockets, as
	// evidence.
	unowned []string
}

// bookBackend is a backend as the books see it.
type bookBackend struct {
	name string
	b    *testbackend.Backend
}

// readBooks lists /proc/self/fd and books every descriptor.
func readBooks(socks *sockTracker, backends []bookBackend) (*fdBooks, error) {
	// The backends' inodes are read before and after the listing, so that
	// a connection accepted or closed meanwhile is still theirs.
	owner := map[uint64]string{}
	for _, bb := range backends {
		for _, ino := range bb.b.Inodes() {
			owner[ino] = bb.name
		}
	}
	fds, err := procfs.FDs()
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	for _, bb := range backends {
		for _, ino := range bb.b.Inodes() {
			owner[ino] = bb.name
		}
	}
	books := &fdBooks{backend: map[string]int{}}
	for _, fd := range slices.Sorted(maps.Keys(fds)) {
		target := fds[fd]
		books.total++
		ino, isSock := procfs.SocketInode(target)
		switch {
		case !isSock:
			books.other++
		case owner[ino] != "":
			books.backend[owner[ino]]++
		default:
			if _, ok := socks.byInode(ino); ok {
				books.client++
				continue
			}
			books.other++
			if len(books.unowned) < maxListed {
				books.unowned = append(books.unowned, fmt.Sprintf("fd %d %s", fd, target))
			}
		}
	}
	// A socket opened or closed between the two readings may be booked as
	// other for one sample; the checks allow for that.
	return books, nil
}

// readOwners fills in the sample's descriptor books, heap and manager
// records, and returns the number of the run's channels not yet released.
func (r *runner) readOwners(s *Sample) (liveChannels int, err error) {
	backends := make([]bookBackend, len(r.backends))
	for i, b := range r.backends {
		backends[i] = bookBackend{name: r.info[i].Name, b: b}
	}
	books, err := readBooks(r.socks, backends)
	if err != nil {
		return 0, err
	}
	s.ClientFDs, s.OtherFDs = books.client, books.other
	s.BackendFDs = fillCounts(s.BackendFDs, books.backend)
	s.BackendConns = fillCounts(s.BackendConns, nil)
	held := s.Held
	s.Held = nil // only when a backend holds connections
	for _, bb := range backends {
		st := bb.b.Stats()
		s.BackendConns[bb.name] = st.Open
		if st.Held > 0 {
			if s.Held == nil {
				s.Held = fillCounts(held, nil)
			}
			s.Held[bb.name] = st.Held
		}
	}
	s.HeapInUse, s.HeapLive = readHeap()
	return r.socks.live(), nil
}
