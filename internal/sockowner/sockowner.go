// Package sockowner is the process-wide table from an open TCP socket to the
// leakproof subchannel that owns it, and the core that every socket-tracking
// dialer of the module shares: the keep-alive TCP dialer, a table from
// socket to owner, and the connection wrapper that reports its close once.
//
// The socket-tracking dialer in package subconn registers every socket it
// wraps; package leaktest looks sockets up here to name the subchannel behind
// a leaked file descriptor. The soak attributes sockets to its channels with
// a Table of its own. Both sides key sockets by their local and remote
// address as netip.AddrPort with IPv4-mapped IPv6 addresses unmapped, so an
// address read from /proc/net/tcp6 and one from net.Conn agree.
package sockowner

import (
	"net"
	"net/netip"
	"sync"
)

// Owner identifies the subchannel that owns a socket.
type Owner struct {
	Manager    uint64 // id of the subconn.Manager
	Target     string // the channel target the manager serves
	Subchannel uint64 // process-wide subchannel id
	Key        string // the backend key, as the trace prints it
}

type pair struct{ local, remote netip.AddrPort }

// owners is the process-wide table of subchannel-owned sockets.
var owners Table[Owner]

// AddrPort converts a net.Addr of a TCP socket into a normalised
// netip.AddrPort. It reports false for addresses that are not IP:port.
func AddrPort(a net.Addr) (netip.AddrPort, bool) {
	if a == nil {
		return netip.AddrPort{}, false
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return Normalize(t.AddrPort()), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return Normalize(ap), true
}

// Normalize unmaps IPv4-mapped IPv6 addresses and drops zones.
func Normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// Register records o as the owner of the socket between local and remote in
// the process-wide table. The returned function removes the entry; it is
// safe to call more than once. Sockets whose addresses are not IP:port are
// not recorded.
func Register(local, remote net.Addr, o Owner) (unregister func()) {
	return owners.Register(local, remote, o)
}

// Lookup returns the owner of the socket between local and remote, if a
// leakproof subchannel owns it.
func Lookup(local, remote netip.AddrPort) (Owner, bool) { return owners.Lookup(local, remote) }

// Len returns the number of sockets currently registered.
func Len() int { return owners.Len() }

// Table maps open sockets, by local and remote address, to a value. The
// zero Table is empty and ready to use.
type Table[V comparable] struct {
	mu sync.Mutex
	m  map[pair]V
}

// Register records v for the socket between local and remote. The returned
// function removes the entry, unless another value was registered for the
// same addresses since; it is safe to call more than once. Sockets whose
// addresses are not IP:port are not recorded.
func (t *Table[V]) Register(local, remote net.Addr, v V) (unregister func()) {
	l, ok1 := AddrPort(local)
	r, ok2 := AddrPort(remote)
	if !ok1 || !ok2 {
		return func() {}
	}
	k := pair{l, r}
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[pair]V)
	}
	t.m[k] = v
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			if cur, ok := t.m[k]; ok && cur == v {
				delete(t.m, k)
			}
			t.mu.Unlock()
		})
	}
}

// Lookup returns the value registered for the socket between local and
// remote.
func (t *Table[V]) Lookup(local, remote netip.AddrPort) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.m[pair{Normalize(local), Normalize(remote)}]
	return v, ok
}

// Len returns the number of sockets registered.
func (t *Table[V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
