package subconn

import (
	"slices"
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
