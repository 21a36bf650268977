package subconn

import (
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
// the deprecated Metadata. If addr already carries a manager's stamp, the
// original (unstamped) address of that record is the key.
func keyAddr(addr resolver.Address) resolver.Address {
	if r := recordOf(addr); r != nil {
		addr = r.addr
	}
	return resolver.Address{Addr: addr.Addr, ServerName: addr.ServerName, Attributes: addr.Attributes}
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
// then Attributes.Equal within the (almost always single-entry) bucket.
type keyMap[V keyed] struct {
	m map[hostKey][]V
	n int
}

func newKeyMap[V keyed]() keyMap[V] { return keyMap[V]{m: make(map[hostKey][]V)} }

func (km *keyMap[V]) get(a resolver.Address) (V, bool) {
	for _, v := range km.m[hostKey{a.Addr, a.ServerName}] {
		if v.keyAddress().Attributes.Equal(a.Attributes) {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func (km *keyMap[V]) set(a resolver.Address, v V) {
	hk := hostKey{a.Addr, a.ServerName}
	b := km.m[hk]
	for i, old := range b {
		if old.keyAddress().Attributes.Equal(a.Attributes) {
			b[i] = v
			return
		}
	}
	km.m[hk] = append(b, v)
	km.n++
}

// remove deletes v (by identity of its key) if it is stored.
func (km *keyMap[V]) remove(a resolver.Address, match func(V) bool) {
	hk := hostKey{a.Addr, a.ServerName}
	b := km.m[hk]
	for i, old := range b {
		if match(old) {
			b = append(b[:i], b[i+1:]...)
			km.n--
			break
		}
	}
	if len(b) == 0 {
		delete(km.m, hk)
	} else {
		km.m[hk] = b
	}
}

func (km *keyMap[V]) len() int { return km.n }

func (km *keyMap[V]) all(f func(V)) {
	for _, b := range km.m {
		for _, v := range b {
			f(v)
		}
	}
}
