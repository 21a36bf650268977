package subconn

import (
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"google.golang.org/grpc/resolver"
)

// ownerKey is the attribute key under which the manager stores the *record
// that owns an address. It is excluded from backend keys and read back by the
// socket-tracking dialer.
type ownerKey struct{}

// recordOf returns the record a manager stamped into addr, if any.
func recordOf(addr resolver.Address) *record {
	if addr.Attributes == nil {
		return nil
	}
	r, _ := addr.Attributes.Value(ownerKey{}).(*record)
	return r
}

// keyAddr strips what is not part of a backend key: BalancerAttributes and
// the deprecated Metadata, and writes Addr in its canonical form
// (canonicalAddr). If addr already carries a manager's stamp, the original
// (unstamped) address of that record is the key.
func keyAddr(addr resolver.Address) resolver.Address {
	if r := recordOf(addr); r != nil {
		return r.keyAddress()
	}
	return resolver.Address{Addr: canonicalAddr(addr.Addr), ServerName: addr.ServerName, Attributes: addr.Attributes}
}

// canonicalAddr returns one spelling per backend for an IP literal with a
// port, so that two spellings of one backend share one key (and one
// subchannel): an IPv4-mapped IPv6 address is unmapped
// ("[::ffff:127.0.0.1]:80" is "127.0.0.1:80"), IPv6 is zero-compressed and
// lower case ("[2001:DB8:0:0::1]:80" is "[2001:db8::1]:80"), and the port is
// a number ("127.0.0.1:0080" is "127.0.0.1:80"). A hostname is kept as it
// is, never resolved (only its port is normalised): "localhost:80" and
// "127.0.0.1:80" stay two keys. Anything else (no port, a unix socket path,
// a port that is not a number) is returned unchanged. An address already in
// canonical form is returned without allocating.
func canonicalAddr(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return s
	}
	var buf [64]byte
	var c []byte
	switch ip, err := parseIP(host); {
	case err == nil:
		c = netip.AddrPortFrom(ip.Unmap(), uint16(p)).AppendTo(buf[:0])
	case strings.IndexByte(host, ':') >= 0: // not an address netip accepts: keep the brackets
		c = strconv.AppendUint(append(append(append(buf[:0], '['), host...), ']', ':'), p, 10)
	default: // a hostname
		c = strconv.AppendUint(append(append(buf[:0], host...), ':'), p, 10)
	}
	if string(c) != s {
		return string(c)
	}
	return s
}

// errNotIP says a host is a name: parsing it would allocate an error.
var errNotIP = errors.New("not an IP literal")

// parseIP parses an IP literal. A host that cannot be one (a letter other
// than a hex digit, a '-' or a '_' before any ':' or '.', as in most DNS
// names) is refused without allocating.
func parseIP(host string) (netip.Addr, error) {
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c == ':' || c == '.' {
			return netip.ParseAddr(host)
		}
		if ('g' <= c && c <= 'z') || ('G' <= c && c <= 'Z') || c == '-' || c == '_' {
			return netip.Addr{}, errNotIP
		}
	}
	return netip.ParseAddr(host)
}

// keyString renders a backend key the way the trace prints it:
// "addr", "addr/serverName" and, with attributes, "addr {k: v}".
func keyString(a resolver.Address) string {
	if a.ServerName == "" && a.Attributes == nil {
		return a.Addr
	}
	var b strings.Builder
	b.WriteString(a.Addr)
	if a.ServerName != "" {
		b.WriteByte('/')
		b.WriteString(a.ServerName)
	}
	if a.Attributes != nil {
		b.WriteByte(' ')
		b.WriteString(a.Attributes.String())
	}
	return b.String()
}

// keyed is implemented by the values stored in a keyMap: pointers, whose
// zero value (nil) marks an empty slot.
type keyed interface {
	comparable
	keyAddress() resolver.Address
}

// sameKey reports whether a and b are one backend key.
func sameKey(a, b resolver.Address) bool {
	return a.Addr == b.Addr && a.ServerName == b.ServerName && a.Attributes.Equal(b.Attributes)
}

// keyMap maps backend keys to values. It is an open-addressing table with
// linear probing on a hash of Addr, comparing the whole key (Addr,
// ServerName, Attributes.Equal, as grpc's AddressMap compares) at each
// probe. A balancer may hold tens of thousands of subchannels, and a slot
// here is one pointer (8 bytes, at most 3/4 of the slots in use): 13-21 B a
// key where a Go map keyed by Addr takes 71-87 B (BenchmarkKeyTable).
type keyMap[V keyed] struct {
	seed  maphash.Seed
	slots []V // len is 0 or a power of two; the zero V is an empty slot
	n     int
}

func newKeyMap[V keyed]() keyMap[V] { return keyMap[V]{seed: maphash.MakeSeed()} }

// home returns the slot where probing for addr starts.
func (km *keyMap[V]) home(addr string) int {
	return int(maphash.String(km.seed, addr) & uint64(len(km.slots)-1))
}

func (km *keyMap[V]) get(a resolver.Address) (V, bool) {
	var zero V
	if km.n == 0 {
		return zero, false
	}
	mask := len(km.slots) - 1
	for i := km.home(a.Addr); ; i = (i + 1) & mask {
		v := km.slots[i]
		if v == zero {
			return zero, false
		}
		if sameKey(v.keyAddress(), a) {
			return v, true
		}
	}
}

func (km *keyMap[V]) set(a resolver.Address, v V) {
	var zero V
	if (km.n+1)*4 > len(km.slots)*3 {
		km.grow()
	}
	mask := len(km.slots) - 1
	for i := km.home(a.Addr); ; i = (i + 1) & mask {
		switch old := km.slots[i]; {
		case old == zero:
			km.slots[i] = v
			km.n++
			return
		case sameKey(old.keyAddress(), a):
			km.slots[i] = v
			return
		}
	}
}

// grow doubles the table (8 slots at first) and reinserts every value.
func (km *keyMap[V]) grow() {
	var zero V
	old := km.slots
	km.slots = make([]V, max(2*len(old), 8))
	mask := len(km.slots) - 1
	for _, v := range old {
		if v == zero {
			continue
		}
		i := km.home(v.keyAddress().Addr)
		for km.slots[i] != zero {
			i = (i + 1) & mask
		}
		km.slots[i] = v
	}
}

// remove deletes the value match selects among those stored for a's Addr.
func (km *keyMap[V]) remove(a resolver.Address, match func(V) bool) {
	var zero V
	if km.n == 0 {
		return
	}
	mask := len(km.slots) - 1
	for i := km.home(a.Addr); km.slots[i] != zero; i = (i + 1) & mask {
		if v := km.slots[i]; v.keyAddress().Addr == a.Addr && match(v) {
			km.removeAt(i)
			return
		}
	}
}

// removeAt empties slot i and moves back the values after it that probing
// could no longer reach across the hole (backward-shift deletion: no
// tombstones, so lookups stay short under churn).
func (km *keyMap[V]) removeAt(i int) {
	var zero V
	mask := len(km.slots) - 1
	for j := (i + 1) & mask; km.slots[j] != zero; j = (j + 1) & mask {
		h := km.home(km.slots[j].keyAddress().Addr)
		// The value at j stays if its home lies cyclically in (i, j].
		if i <= j && i < h && h <= j || i > j && (i < h || h <= j) {
			continue
		}
		km.slots[i] = km.slots[j]
		i = j
	}
	km.slots[i] = zero
	km.n--
}

func (km *keyMap[V]) len() int { return km.n }

func (km *keyMap[V]) all(f func(V)) {
	var zero V
	for _, v := range km.slots {
		if v != zero {
			f(v)
		}
	}
}
