package subconn

import (
	"slices"
	"testing"

	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

type kv struct{ a resolver.Address }

func (k *kv) keyAddress() resolver.Address { return k.a }

// TestKeyMapSameHostDifferentAttributes covers the rare path: several keys
// under one Addr+ServerName, removed in every order.
func TestKeyMapSameHostDifferentAttributes(t *testing.T) {
	mk := func(zone string) *kv {
		a := resolver.Address{Addr: "10.0.0.1:1"}
		if zone != "" {
			a.Attributes = attributes.New("zone", zone)
		}
		return &kv{a}
	}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {0, 2, 1}} {
		km := newKeyMap[*kv]()
		vals := []*kv{mk(""), mk("a"), mk("b")}
		for _, v := range vals {
			km.set(v.a, v)
		}
		km.set(vals[1].a, vals[1]) // replacing keeps the count
		if km.len() != 3 {
			t.Fatalf("len = %d, want 3", km.len())
		}
		left := slices.Clone(vals)
		for _, i := range order {
			v := vals[i]
			if got, ok := km.get(mk(map[int]string{0: "", 1: "a", 2: "b"}[i]).a); !ok || got != v {
				t.Fatalf("order %v: get before removing %d = %v, %v", order, i, got, ok)
			}
			km.remove(v.a, func(x *kv) bool { return x == v })
			left = slices.DeleteFunc(left, func(x *kv) bool { return x == v })
			if _, ok := km.get(v.a); ok {
				t.Fatalf("order %v: %d still found after remove", order, i)
			}
			var all []*kv
			km.all(func(x *kv) { all = append(all, x) })
			if len(all) != len(left) || km.len() != len(left) {
				t.Fatalf("order %v: all = %d values, len %d, want %d", order, len(all), km.len(), len(left))
			}
			for _, x := range left {
				if got, ok := km.get(x.a); !ok || got != x {
					t.Fatalf("order %v: lost %v after removing %d", order, x.a, i)
				}
			}
		}
		if len(km.m) != 0 || len(km.more) != 0 {
			t.Fatalf("order %v: maps not empty: %v %v", order, km.m, km.more)
		}
	}
}
