package subconn

import (
	"errors"
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

// hostKey is the comparable part of a backend key. Attributes are compared
// with Attributes.Equal within a bucket, as grpc's AddressMap does.
type hostKey struct {
	addr, serverName string
}

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
		return r.addr
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

// keyMap maps backend keys to values: one map lookup on Addr+ServerName,
// then Attributes.Equal. The first value of a bucket is stored inline; keys
// that differ only in Attributes (rare) go to more.
type keyMap[V keyed] struct {
	m    map[hostKey]V
	more map[hostKey][]V
	n    int
}

func newKeyMap[V keyed]() keyMap[V] { return keyMap[V]{m: make(map[hostKey]V)} }

func (km *keyMap[V]) get(a resolver.Address) (V, bool) {
	hk := hostKey{a.Addr, a.ServerName}
	if v, ok := km.m[hk]; ok {
		if v.keyAddress().Attributes.Equal(a.Attributes) {
			return v, true
		}
		for _, v := range km.more[hk] {
			if v.keyAddress().Attributes.Equal(a.Attributes) {
				return v, true
			}
		}
	}
	var zero V
	return zero, false
}

func (km *keyMap[V]) set(a resolver.Address, v V) {
	hk := hostKey{a.Addr, a.ServerName}
	first, ok := km.m[hk]
	switch {
	case !ok:
		km.m[hk] = v
		km.n++
		return
	case first.keyAddress().Attributes.Equal(a.Attributes):
		km.m[hk] = v
		return
	}
	b := km.more[hk]
	for i, old := range b {
		if old.keyAddress().Attributes.Equal(a.Attributes) {
			b[i] = v
			return
		}
	}
	if km.more == nil {
		km.more = make(map[hostKey][]V)
	}
	km.more[hk] = append(b, v)
	km.n++
}

// remove deletes the value match selects under a's Addr and ServerName.
func (km *keyMap[V]) remove(a resolver.Address, match func(V) bool) {
	hk := hostKey{a.Addr, a.ServerName}
	first, ok := km.m[hk]
	if !ok {
		return
	}
	b := km.more[hk]
	if match(first) {
		km.n--
		if len(b) == 0 {
			delete(km.m, hk)
			return
		}
		km.m[hk] = b[0]
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
		delete(km.more, hk)
	} else {
		km.more[hk] = b
	}
}

func (km *keyMap[V]) len() int { return km.n }

func (km *keyMap[V]) all(f func(V)) {
	for hk, v := range km.m {
		f(v)
		for _, v := range km.more[hk] {
			f(v)
		}
	}
}
