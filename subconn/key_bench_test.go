package subconn

import (
	"fmt"
	"runtime"
	"testing"

	"google.golang.org/grpc/resolver"
)

// benchKeyed is a value stored by key, as a *record is in the manager.
type benchKeyed struct{ addr resolver.Address }

func (v *benchKeyed) keyAddress() resolver.Address { return v.addr }

// keyIndex is what the manager needs from a table of backend keys.
type keyIndex interface {
	get(resolver.Address) (*benchKeyed, bool)
	set(resolver.Address, *benchKeyed)
}

// goMap is the same index on a Go map keyed by Addr, with the few values
// that share an Addr (other ServerName or Attributes) in a list, as grpc's
// resolver.AddressMap keeps them.
type goMap map[string][]*benchKeyed

func (m goMap) get(a resolver.Address) (*benchKeyed, bool) {
	for _, v := range m[a.Addr] {
		if sameKey(v.addr, a) {
			return v, true
		}
	}
	return nil, false
}

func (m goMap) set(a resolver.Address, v *benchKeyed) {
	l := m[a.Addr]
	for i, old := range l {
		if sameKey(old.addr, a) {
			l[i] = v
			return
		}
	}
	m[a.Addr] = append(l, v)
}

// addressMap is grpc's resolver.AddressMapV2, the building block grpc's own
// balancers use.
type addressMap struct {
	m *resolver.AddressMapV2[*benchKeyed]
}

func (m addressMap) get(a resolver.Address) (*benchKeyed, bool) { return m.m.Get(a) }
func (m addressMap) set(a resolver.Address, v *benchKeyed)      { m.m.Set(a, v) }

var keyTables = []struct {
	name string
	new  func() keyIndex
}{
	{"keyMap", func() keyIndex { km := newKeyMap[*benchKeyed](); return &km }},
	{"gomap", func() keyIndex { return goMap{} }},
	{"addressmap", func() keyIndex { return addressMap{resolver.NewAddressMapV2[*benchKeyed]()} }},
}

func benchValues(n int) []*benchKeyed {
	vs := make([]*benchKeyed, n)
	for i := range vs {
		vs[i] = &benchKeyed{addr: resolver.Address{Addr: fmt.Sprintf("10.%d.%d.%d:443", i>>16&255, i>>8&255, i&255)}}
	}
	return vs
}

// BenchmarkKeyTable compares subconn's open-addressing keyMap with a Go map
// and with grpc's AddressMap: bytes/key is the heap the table itself holds
// for n keys (the values and their addresses are allocated beforehand and
// not counted), ns/op one lookup of a present key.
func BenchmarkKeyTable(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		vs := benchValues(n)
		for _, tab := range keyTables {
			b.Run(fmt.Sprintf("%s/keys=%d", tab.name, n), func(b *testing.B) {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				t := tab.new()
				for _, v := range vs {
					t.set(v.addr, v)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				for i := 0; b.Loop(); i++ {
					v := vs[i%n]
					if got, ok := t.get(v.addr); !ok || got != v {
						b.Fatalf("lookup of %s: %v, %v", v.addr.Addr, got, ok)
					}
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "bytes/key")
				runtime.KeepAlive(t)
			})
		}
	}
}
