// Package sockowner is the process-wide table from an open TCP socket to the
// leakproof subchannel that owns it.
//
// The socket-tracking dialer in package subconn registers every socket it
// wraps; package leaktest looks sockets up here to name the subchannel behind
// a leaked file descriptor. Both sides key sockets by their local and remote
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

var (
	mu     sync.Mutex
	owners = map[pair]Owner{}
)

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

// Register records o as the owner of the socket between local and remote.
// The returned function removes the entry; it is safe to call more than once.
// Sockets whose addresses are not IP:port are not recorded.
func Register(local, remote net.Addr, o Owner) (unregister func()) {
	l, ok1 := AddrPort(local)
	r, ok2 := AddrPort(remote)
	if !ok1 || !ok2 {
		return func() {}
	}
	k := pair{l, r}
	mu.Lock()
	owners[k] = o
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			if cur, ok := owners[k]; ok && cur == o {
				delete(owners, k)
			}
			mu.Unlock()
		})
	}
}

// Lookup returns the owner of the socket between local and remote, if a
// leakproof subchannel owns it.
func Lookup(local, remote netip.AddrPort) (Owner, bool) {
	mu.Lock()
	defer mu.Unlock()
	o, ok := owners[pair{Normalize(local), Normalize(remote)}]
	return o, ok
}

// Len returns the number of sockets currently registered.
func Len() int {
	mu.Lock()
	defer mu.Unlock()
	return len(owners)
}
