package subconn

import (
	"errors"
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
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
		switch c := host[i]; {
		case c == ':' || c == '.':
			return netip.ParseAddr(host)
		case ('g' <= c && c <= 'z') || ('G' <= c && c <= 'Z') || c == '-' || c == '_':
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

// keyed is implemented by the values stored in a keyMap.
type keyed interface{ keyAddress() resolver.Address }

// sameKey reports whether a and b are one backend key.
func sameKey(a, b resolver.Address) bool {
	return a.Addr == b.Addr && a.ServerName == b.ServerName && a.Attributes.Equal(b.Attributes)
}

// keyMap maps backend keys to values: one map lookup on a hash of Addr,
// then a comparison of the whole key (Addr, ServerName, Attributes.Equal, as
// grpc's AddressMap compares). The first value of a hash is stored inline;
// keys that share a hash (the same Addr with another ServerName or
// Attributes, which is rare, or a hash collision, which is rarer) go to
// more. A 64-bit hash rather than the strings keeps an entry at 16 bytes: a
// balancer may hold tens of thousands.
type keyMap[V keyed] struct {
	seed maphash.Seed
	m    map[uint64]V
	more map[uint64][]V
	n    int
}

func newKeyMap[V keyed]() keyMap[V] {
	return keyMap[V]{seed: maphash.MakeSeed(), m: make(map[uint64]V)}
}

func (km *keyMap[V]) hash(a resolver.Address) uint64 { return maphash.String(km.seed, a.Addr) }

func (km *keyMap[V]) get(a resolver.Address) (V, bool) {
	h := km.hash(a)
	if v, ok := km.m[h]; ok {
		if sameKey(v.keyAddress(), a) {
			return v, true
		}
		for _, v := range km.more[h] {
			if sameKey(v.keyAddress(), a) {
				return v, true
			}
		}
	}
	var zero V
	return zero, false
}

func (km *keyMap[V]) set(a resolver.Address, v V) {
	h := km.hash(a)
	first, ok := km.m[h]
	switch {
	case !ok:
		km.m[h] = v
		km.n++
		return
	case sameKey(first.keyAddress(), a):
		km.m[h] = v
		return
	}
	b := km.more[h]
	for i, old := range b {
		if sameKey(old.keyAddress(), a) {
			b[i] = v
			return
		}
	}
	if km.more == nil {
		km.more = make(map[uint64][]V)
	}
	km.more[h] = append(b, v)
	km.n++
}

// remove deletes the value match selects among those stored under a's hash.
func (km *keyMap[V]) remove(a resolver.Address, match func(V) bool) {
	h := km.hash(a)
	first, ok := km.m[h]
	if !ok {
		return
	}
	b := km.more[h]
	if match(first) {
		km.n--
		if len(b) == 0 {
			delete(km.m, h)
			return
		}
		km.m[h] = b[0]
		b = b[1:]
	} else {
		i := slices.IndexFunc(b, match)
		if i < 0 {
			return
		}
		km.n--
		b = slices.Delete(b, i, i+1)
	}
	if len(b) == 0 {
		delete(km.more, h)
	} else {
		km.more[h] = b
	}
}

func (km *keyMap[V]) len() int { return km.n }

func (km *keyMap[V]) all(f func(V)) {
	for h, v := range km.m {
		f(v)
		for _, v := range km.more[h] {
			f(v)
		}
	}
}
