package soak

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/leakproof/leakproof/internal/procfs"
	"github.com/leakproof/leakproof/internal/sockowner"
	"github.com/leakproof/leakproof/jsontime"
	"github.com/leakproof/leakproof/subconn"
)

// Channel kinds, for attributing sockets.
const (
	kindMain    = "main"
	kindCompare = "compare"
	kindChurn   = "churn"
	kindTLS     = "tls"
)

// sockTracker attributes sockets to the channels of the run. Every channel
// dials through its own dial function, which records each socket's local
// and remote address; sampling reads the real sockets from /proc and looks
// them up here. A socket whose Close was never called stays attributed, so
// a leaked descriptor is counted against the channel that opened it.
type sockTracker struct {
	owners sockowner.Table[int] // socket → channel id

	mu     sync.Mutex
	chans  map[int]*chanRec // by id, until forgotten
	nextID int
	// inodes are the open sockets of the channels by inode, for the
	// descriptor books: an inode names a socket in /proc/self/fd whatever
	// its TCP state, also once it is gone from /proc/net/tcp.
	inodes map[uint64]*chanRec
}

type chanRec struct {
	id   int
	name string
	kind string
}

func newSockTracker() *sockTracker { return &sockTracker{} }

// register returns a new channel id.
func (t *sockTracker) register(name, kind string) *chanRec {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.chans == nil {
		t.chans = map[int]*chanRec{}
	}
	c := &chanRec{id: t.nextID, name: name, kind: kind}
	t.nextID++
	t.chans[c.id] = c
	return c
}

// live returns the number of channels registered and not yet forgotten:
// open ones, and closed ones whose sockets may still be open.
func (t *sockTracker) live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.chans)
}

// forget drops a closed channel whose sockets are all gone, so that a long
// run's churn does not grow the tracker.
func (t *sockTracker) forget(ch *chanRec) {
	t.mu.Lock()
	delete(t.chans, ch.id)
	t.mu.Unlock()
}

// channel returns the channel that dialed the socket between local and
// remote, if one of the run's channels did.
func (t *sockTracker) channel(local, remote netip.AddrPort) (*chanRec, bool) {
	id, ok := t.owners.Lookup(local, remote)
	if !ok {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.chans[id]
	return ch, ok
}

// dialer returns the channel's dial function: subconn.Dialer over a dial
// that records the socket for ch until it is closed. base (Config.Dialer)
// dials, if not nil; else a TCP dial that books each socket's inode as
// soon as it exists, before it connects.
func (t *sockTracker) dialer(ch *chanRec, base subconn.DialFunc) subconn.DialFunc {
	return subconn.Dialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var booked []uint64
		var conn net.Conn
		var err error
		if base != nil {
			conn, err = base(ctx, addr)
			if err == nil && conn == nil {
				err = fmt.Errorf("soak: Config.Dialer returned no conn and no error for %s", addr)
			}
		} else {
			conn, err = sockowner.DialBooked(ctx, "tcp", addr, func(ino uint64) {
				booked = append(booked, ino)
				t.bookInode(ino, ch)
			})
		}
		if err != nil {
			for _, ino := range booked {
				t.removeInode(ino)
			}
			return nil, err
		}
		unregister := t.owners.Register(conn.LocalAddr(), conn.RemoteAddr(), ch.id)
		ino := t.addInode(conn, ch)
		for _, b := range booked {
			if b != ino {
				t.removeInode(b) // Happy Eyeballs' other attempts
			}
		}
		return sockowner.Wrap(conn, func() {
			unregister()
			t.removeInode(ino)
		}), nil
	})
}

// addInode books conn's socket for ch and returns its inode (0 if unknown).
func (t *sockTracker) addInode(conn net.Conn, ch *chanRec) uint64 {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0
	}
	ino := sockowner.Inode(sc)
	t.bookInode(ino, ch)
	return ino
}

// bookInode books the socket with inode ino for ch.
func (t *sockTracker) bookInode(ino uint64, ch *chanRec) {
	if ino == 0 {
		return
	}
	t.mu.Lock()
	if t.inodes == nil {
		t.inodes = map[uint64]*chanRec{}
	}
	t.inodes[ino] = ch
	t.mu.Unlock()
}

func (t *sockTracker) removeInode(ino uint64) {
	if ino == 0 {
		return
	}
	t.mu.Lock()
	delete(t.inodes, ino)
	t.mu.Unlock()
}

// byInode returns the channel whose socket has inode ino, if it is open.
func (t *sockTracker) byInode(ino uint64) (*chanRec, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.inodes[ino]
	return ch, ok
}

// socketCount is one reading of the real sockets to the backends.
type socketCount struct {
	byChan  map[int]map[string]int // channel id → backend name → sockets
	byKind  map[string]map[string]int
	total   map[string]int // every socket of the process to each backend
	sockets []procfs.Socket
	owner   map[netip.AddrPort]string // local address → channel name, for reports
}

// count reads the TCP sockets of the process and attributes the ones to
// backends (names maps backend address → name).
func (t *sockTracker) count(names map[netip.AddrPort]string) (*socketCount, error) {
	socks, err := procfs.HeldSockets()
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	sc := &socketCount{
		byChan: map[int]map[string]int{},
		byKind: map[string]map[string]int{},
		total:  map[string]int{},
		owner:  map[netip.AddrPort]string{},
	}
	for _, s := range socks {
		if !s.IsConnection() {
			continue
		}
		name, ok := names[s.Remote]
		if !ok {
			continue
		}
		sc.total[name]++
		sc.sockets = append(sc.sockets, s)
		ch, ok := t.channel(s.Local, s.Remote)
		if !ok {
			continue
		}
		sc.owner[s.Local] = ch.name
		inc(sc.byChan, ch.id, name)
		inc(sc.byKind, ch.kind, name)
	}
	return sc, nil
}

func inc[K comparable](m map[K]map[string]int, k K, name string) {
	if m[k] == nil {
		m[k] = map[string]int{}
	}
	m[k][name]++
}

// describe lists the sockets of channel kind to backend addr, with the
// leakproof subchannel that owns each, as evidence in a failure.
func (sc *socketCount) describe(t *sockTracker, kind string, addr netip.AddrPort) string {
	var lines []string
	for _, s := range sc.sockets {
		if s.Remote != addr {
			continue
		}
		if ch, ok := t.channel(s.Local, s.Remote); !ok || ch.kind != kind {
			continue
		}
		line := s.String()
		if o, ok := sockowner.Lookup(s.Local, s.Remote); ok {
			line += fmt.Sprintf(" (subchannel #%d %s)", o.Subchannel, o.Key)
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return strings.Join(lines, "; ")
}

// countFDs returns the number of open file descriptors of the process, or
// -1 if they cannot be read.
func countFDs() int {
	fds, err := procfs.FDs()
	if err != nil {
		return -1
	}
	return len(fds)
}

// since returns the offset of t from start as a jsontime.Duration.
func since(start, t time.Time) jsontime.Duration { return jsontime.Duration(t.Sub(start)) }
