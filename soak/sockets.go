package soak

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/leakproof/leakproof/internal/sockowner"
	"github.com/leakproof/leakproof/leaktest"
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

	mu    sync.Mutex
	chans []*chanRec // by id
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
	c := &chanRec{id: len(t.chans), name: name, kind: kind}
	t.chans = append(t.chans, c)
	return c
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
	return t.chans[id], true
}

// dialer returns the channel's dial function: subconn.Dialer over a TCP
// dial that records the socket for ch until it is closed.
func (t *sockTracker) dialer(ch *chanRec) subconn.DialFunc {
	return subconn.Dialer(func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := sockowner.Dial(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return sockowner.Wrap(conn, t.owners.Register(conn.LocalAddr(), conn.RemoteAddr(), ch.id)), nil
	})
}

// socketCount is one reading of the real sockets to the backends.
type socketCount struct {
	byChan  map[int]map[string]int // channel id → backend name → sockets
	byKind  map[string]map[string]int
	total   map[string]int // every socket of the process to each backend
	sockets []leaktest.Socket
	owner   map[netip.AddrPort]string // local address → channel name, for reports
}

// count reads the TCP sockets of the process and attributes the ones to
// backends (names maps backend address → name).
func (t *sockTracker) count(names map[netip.AddrPort]string) (*socketCount, error) {
	socks, err := leaktest.Sockets()
	if err != nil {
		return nil, err
	}
	sc := &socketCount{
		byChan: map[int]map[string]int{},
		byKind: map[string]map[string]int{},
		total:  map[string]int{},
		owner:  map[netip.AddrPort]string{},
	}
	for _, s := range socks {
		if s.State == leaktest.TCPListen || s.State == leaktest.TCPTimeWait {
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

// countFDs returns the number of open file descriptors of the process.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// since returns the offset of t from start as a subconn.Duration.
func since(start, t time.Time) subconn.Duration { return subconn.Duration(t.Sub(start)) }
